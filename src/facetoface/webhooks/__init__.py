"""The app's signed webhooks: delivery of the outbox (`facetoface.outbox`) to `APP_WEBHOOK_URL`
in the Standard Webhooks format, by any replica under a lease, and the operators' routes."""
