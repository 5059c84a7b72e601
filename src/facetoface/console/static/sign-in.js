// Sign-in: a demo user or the development operator (development only), or a pasted token.

import {
  Problem,
  adoptTokenFromFragment,
  api,
  claimsOf,
  dropOfferedToken,
  isOperator,
  offeredToken,
  setToken,
  signOut,
  takeReturn,
  token,
} from "./api.js";
import { $, h, showProblem } from "./ui.js";

// An operator lands on the operators' view; a user on their sessions, or on the session
// whose link brought them here.
const landing = () => (isOperator() ? "/console/ops" : takeReturn() || "/console");

async function signInWith(value) {
  const before = token();
  setToken(value);
  try {
    // Any call that needs a valid token will do; this one reads nothing of anyone else.
    await api("/v1/sessions?limit=1");
  } catch (problem) {
    // A token that does not work changes nothing: whoever was signed in stays signed in.
    if (before) {
      setToken(before);
    } else {
      signOut();
    }
    throw problem;
  }
  location.assign(landing());
}

const who = (value) => {
  const data = claimsOf(value) || {};
  return data.email || data.sub || "an unknown user";
};

/** A link brought another user's token while someone is signed in: ask, never switch
 * silently (anyone can send a link). */
function askWhichUser(offered) {
  $("switch-current").textContent = who(token());
  $("switch-offered").textContent = who(offered);
  $("switch-stay-name").textContent = who(token());
  $("switch-to-name").textContent = who(offered);
  $("switch").hidden = false;
  $("switch-stay").addEventListener("click", () => {
    dropOfferedToken();
    location.replace(landing());
  });
  $("switch-to").addEventListener("click", async () => {
    dropOfferedToken();
    try {
      await signInWith(offered);
    } catch (problem) {
      $("switch").hidden = true;
      showProblem($("error"), problem);
    }
  });
  $("switch-stay").focus();
}

async function showDevUsers() {
  let listing;
  try {
    listing = await api("/v1/dev/users");
  } catch (problem) {
    if (problem instanceof Problem && problem.status === 404) {
      return; // not development: the paste form is the way in
    }
    showProblem($("error"), problem);
    return;
  }
  const list = $("dev-users");
  list.replaceChildren();
  const people = listing.users.filter((user) => !user.operator);
  $("dev-empty").hidden = people.length > 0;
  for (const user of listing.users) {
    const button = h(
      "button",
      {
        type: "button",
        on: {
          click: async () => {
            button.disabled = true;
            try {
              const minted = await api("/v1/dev/tokens", {
                method: "POST",
                body: { user_id: user.user_id },
              });
              await signInWith(minted.access_token);
            } catch (problem) {
              showProblem($("error"), problem);
              button.disabled = false;
            }
          },
        },
      },
      h("strong", { text: user.name }),
      h("span", {
        class: "muted small",
        text: user.operator ? "Operations view: every session, Tavus, the reconciler" : user.email,
      }),
    );
    list.append(h("li", {}, button));
  }
  $("dev").hidden = false;
}

function wirePasteForm() {
  $("paste-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      showProblem($("error"), {
        title: "No token given",
        detail: "Paste an access token into the field, then sign in.",
      });
      $("token").focus();
      return;
    }
    try {
      await signInWith(value);
    } catch (problem) {
      showProblem($("error"), problem);
    }
  });
}

adoptTokenFromFragment();
const offered = offeredToken();
if (offered && token()) {
  askWhichUser(offered);
  wirePasteForm();
} else if (token()) {
  location.replace(landing());
} else {
  wirePasteForm();
  showDevUsers();
}
