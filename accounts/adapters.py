from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Lower-cases addresses so Trader@x.com and trader@x.com are one account."""

    def clean_email(self, email: str) -> str:
        return super().clean_email(email).strip().lower()


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Discord only links an existing Nexus account (Settings → Discord, docs/companion.md): signing
    in with Discord works for an account already linked, but it never opens a new one."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        if sociallogin.account.provider == "discord":
            return False
        return super().is_open_for_signup(request, sociallogin)
