"""Access changes from allauth (password, email, two-factor) go to the audit log; a token or user change
marks the API tokens it touches stale in the cache (core.api_auth)."""

from allauth.account.signals import email_changed, password_changed, password_reset, user_signed_up
from allauth.mfa.signals import authenticator_added, authenticator_removed
from allauth.socialaccount.signals import social_account_added, social_account_removed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import ApiToken, User
from core.api_auth import api_token_cache_forget
from core.audit import audit_record
from core.consumers import user_sockets_reauthenticate
from core.rls import auth_context


@receiver(user_signed_up)
def _signed_up(sender, request, user, **kwargs):
    audit_record(action="account.signed_up", user=user, actor=user, target=user, request=request)


@receiver(password_changed)
def _password_changed(sender, request, user, **kwargs):
    audit_record(action="account.password_changed", user=user, actor=user, target=user, request=request)
    # The new password ends the other sessions (their auth hash no longer matches); their open pages too.
    transaction.on_commit(lambda: user_sockets_reauthenticate(user.pk))


@receiver(password_reset)
def _password_reset(sender, request, user, **kwargs):
    audit_record(action="account.password_reset", user=user, actor=user, target=user, request=request)
    transaction.on_commit(lambda: user_sockets_reauthenticate(user.pk))


@receiver(email_changed)
def _email_changed(sender, request, user, from_email_address, to_email_address, **kwargs):
    audit_record(
        action="account.email_changed", user=user, actor=user, target=user, request=request,
        before={"email": getattr(from_email_address, "email", None)},
        after={"email": to_email_address.email},
    )


@receiver(authenticator_added)
def _mfa_added(sender, request, user, authenticator, **kwargs):
    audit_record(action="account.2fa_added", user=user, actor=user, target=user, request=request,
                 after={"type": authenticator.type})


@receiver(authenticator_removed)
def _mfa_removed(sender, request, user, authenticator, **kwargs):
    audit_record(action="account.2fa_removed", user=user, actor=user, target=user, request=request,
                 before={"type": authenticator.type})


@receiver(social_account_added)
def _social_added(sender, request, sociallogin, **kwargs):
    account = sociallogin.account
    audit_record(action=f"account.{account.provider}_linked", user=account.user, actor=account.user, target=account,
                 request=request, after={"uid": account.uid, "via": "oauth"})


@receiver(social_account_removed)
def _social_removed(sender, request, socialaccount, **kwargs):
    audit_record(action=f"account.{socialaccount.provider}_unlinked", user=socialaccount.user,
                 actor=socialaccount.user, target=socialaccount, request=request,
                 before={"uid": socialaccount.uid, "via": "oauth"})


@receiver([post_save, post_delete], sender=ApiToken, dispatch_uid="accounts.api_token_changed")
def _api_token_changed(sender, instance, created=False, **kwargs):
    if not created:  # a new token has nothing cached yet
        api_token_cache_forget([instance.digest])


@receiver([post_save, post_delete], sender=User, dispatch_uid="accounts.api_token_user_changed")
def _api_token_user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    # A cached token carries its user: deactivated, deleted or edited, they are read afresh. A sign-in's
    # new last_login changes nothing an API request reads.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    with auth_context(reason="API tokens of a changed user, to mark their cached rows stale"):
        digests = list(ApiToken.objects.filter(user_id=instance.pk).values_list("digest", flat=True))
    api_token_cache_forget(digests)
