from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Lower-cases addresses so Trader@x.com and trader@x.com are one account."""

    def clean_email(self, email: str) -> str:
        return super().clean_email(email).strip().lower()
