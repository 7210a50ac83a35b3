"""The one exception type that reaches the user as a single line, without a traceback."""


class GeneratorError(Exception):
    """A problem with the user's input (config, images, weights) worth one clear line."""
