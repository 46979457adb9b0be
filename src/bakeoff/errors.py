"""The project's exception: errors a user can cause and fix."""


class BakeoffError(Exception):
    """A problem with the user's input (params, images, weights) that they can fix.

    The message says what to change; the CLI prints it on one line and exits 1.
    """
