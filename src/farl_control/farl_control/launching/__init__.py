"""Starting stacks: the node table, `farl launch`, and child processes that never outlive their launcher."""
