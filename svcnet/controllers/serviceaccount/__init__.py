"""The ServiceAccount controller: a ``default`` ServiceAccount in every active namespace."""
