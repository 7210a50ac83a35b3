"""The one exception type that reaches the user as a single line, without a traceback."""


class GeneratorError(Exception):
    """A problem with the user's input (config, images, weights) worth one clear line."""


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value still makes a short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
