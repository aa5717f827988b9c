"""graphspore: a MindSpore-style static-graph training framework compiled through LLVM."""
