"""Test suite (a package, so a dependency that ships a top-level ``tests`` package cannot
shadow the helpers imported as ``tests.evalkit``, ``tests.llm_server``, ``tests.pg``)."""
