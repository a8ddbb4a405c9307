"""Developer tools for anju (lint)."""
