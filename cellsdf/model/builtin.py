"""The names of the models shipped inside the package (``ckpt=plat`` and so on); light: no torch."""

BUILT_IN = ("plat", "cele", "filo")
