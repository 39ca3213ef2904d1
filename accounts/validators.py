from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """Refuse absurdly long passwords: nobody types 100,000 characters, yet the other validators and the
    hasher would still work through every one of them."""

    def __init__(self, max_length: int = 1024) -> None:
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is {len(password):,} characters long; use at most {self.max_length:,}.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password can be at most {self.max_length:,} characters long."
