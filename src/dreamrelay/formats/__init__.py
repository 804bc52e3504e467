"""Wire formats: how a task is shown to customers of each API family."""
