"""What agents run on: chat models (`models`: specs, the registry, Ollama; `llamacpp`
and its `llamacpp_engine` process: the embedded model) and tools (`tools`: the
built-in ones and MCP servers')."""
