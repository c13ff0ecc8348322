"""The base of every user-facing toyvisor error."""
class ToyvisorError(Exception):
    """An error caused by user input (a source file, an image, a config, an argument); str() is the one-line (or located, multi-line) message shown to the user."""
