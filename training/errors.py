"""Errors of the training library a user can act on; import-light so the CLI can catch them cheaply."""


class RegistryError(RuntimeError):
    """The MLflow store cannot be read, or a registered model's files are gone; the message says what to do."""


class ChampionFilesMissing(RegistryError):
    """The alias points at a version whose model files cannot be loaded (deleted or moved artifacts)."""
