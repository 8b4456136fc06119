"""The same fan-out (N parallel model calls, then one synthesis call) in mas-graphs, CrewAI
and Microsoft Agent Framework, each on a fake model that sleeps a fixed latency per call,
with each framework's own persistence off and on (`python -m benchmarks.peers`)."""
