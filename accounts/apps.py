from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from accounts import audit, metrics, signals, throttling

        signals.connect()
        audit.connect()
        # Web sign-ins count against the address like bad tokens; a good one forgives them.
        user_login_failed.connect(
            lambda sender, credentials, request=None, **kwargs: request and throttling.record_failure(request),
            weak=False,
            dispatch_uid="throttle-sign-in-failed",
        )
        user_login_failed.connect(
            lambda sender, **kwargs: metrics.AUTHENTICATION_FAILURES.labels(reason="sign_in").inc(),
            weak=False,
            dispatch_uid="metrics-sign-in-failed",
        )
        user_logged_in.connect(
            lambda sender, request, user, **kwargs: request and throttling.forget_failures(request),
            weak=False,
            dispatch_uid="throttle-signed-in",
        )
