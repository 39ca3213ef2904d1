from celery import shared_task

from alerts.services import alert_maintenance


@shared_task(name="alerts.maintenance")
def alert_maintenance_task() -> dict[str, int]:
    return alert_maintenance()
