// Filled by its own issue; the target exists so the module graph is visible from day one.
