// The module's tests arrive with its issue.
