class DomainError(Exception):
    """An error the user caused and can fix; the message says how. Views show it, the API returns 4xx."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
