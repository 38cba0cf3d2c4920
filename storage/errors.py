"""Storage-level outcomes that callers must handle; named like sentences."""


class StorageError(Exception):
    """Base class for expected storage outcomes (not outages)."""


class UsernameTaken(StorageError):
    pass


class EmailTaken(StorageError):
    pass

