"""RAG instrumentors: langchain-core and chromadb, following the OpenTelemetry GenAI conventions."""
