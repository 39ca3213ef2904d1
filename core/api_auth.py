from rest_framework.authentication import TokenAuthentication

from core.rls import activate_tenant


class TenantTokenAuthentication(TokenAuthentication):
    """Token auth that also switches the request's transaction to the token's user (RLS)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            activate_tenant(result[0].pk)
        return result
