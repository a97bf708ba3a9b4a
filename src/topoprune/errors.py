"""The one exception type a user can cause."""


class TopopruneError(ValueError):
    """A mistake in what the user asked for: bad sparsity, unknown model, missing dataset root, ...

    The message is one line that says what to do; the CLI prints it and exits with code 2.
    """
