"""bakeoff: which pretrained CNN backbone should I use for my images?"""

__version__ = "0.1.0"
