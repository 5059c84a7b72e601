"""The periodic reconciler: closes the gaps callbacks and crashes leave between us and Tavus."""
