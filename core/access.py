from allauth.mfa.utils import is_mfa_enabled


def user_may_use_admin(*, user) -> bool:
    """Staff reach the admin, and through it every tenant's data, only with two-factor authentication."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and is_mfa_enabled(user))
