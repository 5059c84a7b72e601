"""The origin app's Supabase Edge Function routes (`/functions/v1/*`), as thin adapters over
the sessions engine and the callback inbox, so that app switches by changing one URL."""
