"""The git content store: objects, refs, the log stream, git itself, the lock, the twin."""
