"""CI jobs: start one (Developer+, asked of the policy as CREATE_PACKAGE, which is
"Developer+ on the project"), finish one, and `GET /job` for the job's own token."""

from rest_framework import serializers, status
from rest_framework.response import Response

from accounts import roles
from accounts.jobs import FINAL_STATUSES, finish_job, start_job
from accounts.models import CiJob
from accounts.principals import JOB_TOKEN
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import GitLabSerializer, job_json
from registry import policy
from registry.errors import Forbidden, Unauthenticated


class StartInput(GitLabSerializer):
    name = serializers.CharField(max_length=255, required=False, default="job")
    ref = serializers.CharField(max_length=255, required=False, default="main")


class FinishInput(GitLabSerializer):
    status = serializers.ChoiceField(
        choices=[str(s) for s in FINAL_STATUSES],
        required=False,
        default=CiJob.Status.SUCCESS,
        error_messages={"invalid_choice": "does not have a valid value"},
    )


class JobsView(ManagementView):
    def post(self, request, ref):
        project = self.get_project(ref, roles.CREATE_PACKAGE)
        data = StartInput(data=request.data)
        data.is_valid(raise_exception=True)
        job, token = start_job(project, self.user, **data.validated_data)
        return Response(job_json(job, token=token), status=status.HTTP_201_CREATED)


class JobFinishView(ManagementView):
    allow_job_token = True

    def post(self, request, ref, job_id):
        principal = self.principal
        if principal.kind == JOB_TOKEN:
            # A job token may finish only its own job.
            job = principal.job
            project = policy.resolve_project(str(ref))
            if job.pk != job_id or project is None or project.pk != job.project_id:
                raise Forbidden("403 Forbidden - a job token may only finish its own job")
        else:
            project = self.get_project(ref)
            job = CiJob.objects.select_related("user", "project").filter(project=project, pk=job_id).first()
            if job is None:
                not_found("Job")
            if job.user_id != principal.user.pk:
                policy.authorize(principal, project, roles.ADMIN_PROJECT)
        data = FinishInput(data=request.data)
        data.is_valid(raise_exception=True)
        if not job.running:
            raise ApiError(400, "400 Bad request - the job has already finished")
        job = finish_job(job, data.validated_data["status"])
        return Response(job_json(job))


class CurrentJobView(ManagementView):
    allow_job_token = True

    def get(self, request):
        if self.principal.kind != JOB_TOKEN:
            raise Unauthenticated("401 Unauthorized - a job token is required")
        return Response(job_json(self.principal.job))
