"""How a terminal shows each built-in pattern's runs: its spec's `PatternView` (the final
result, a live view while it runs, and its branch when a supervisor ran it as a team)."""
