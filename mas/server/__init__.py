"""Serving the patterns over HTTP (the Agent Protocol) from Aegra or `langgraph dev`:
`launch` (`mas serve`), `graphs` (the file servers load: one factory per registered
pattern), `factories` (the graphs with the operator's sealed context), `auth` (API keys,
owners, and a rule for every route), `threads` (the runner's and the server's threads,
read from their tables)."""
