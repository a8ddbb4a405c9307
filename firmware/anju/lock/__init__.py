"""The smart lock's pure cores (docs/smart_lock.md): no hardware imports."""
