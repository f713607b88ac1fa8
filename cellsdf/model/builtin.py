"""The names of the models shipped inside the package (``ckpt=plat`` and so on); light: no torch."""

# filo is a body-and-protrusions model; filo_whole learned filo's whole cells (what lift fits for filo).
BUILT_IN = ("plat", "cele", "filo", "filo_whole")
