"""The S3 option: CHAT_S3_BUCKET moves uploads into a private bucket, tested against a
local S3 server (moto's server mode), through the site's own upload and file views.
"""

import io
import runpy

import boto3
import pytest
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from moto.server import ThreadedMotoServer
from PIL import Image

from chat.models import Upload
from tests.server import ROOT

SETTINGS = ROOT / "chatsite" / "settings.py"
# Any key pair will do for the local server; the site finds them the standard AWS way.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local-test-key", "AWS_SECRET_ACCESS_KEY": "local-test-secret"}


def read_settings(monkeypatch, **env: str) -> dict:
    """Runs chatsite/settings.py afresh with `env` set; returns its names."""
    for name in ("CHAT_S3_BUCKET", "CHAT_S3_ENDPOINT_URL", "CHAT_S3_REGION", "CHAT_X_ACCEL_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


# --- Settings ----------------------------------------------------------------


def test_local_files_are_the_default(monkeypatch):
    # Django's own STORAGES: local files under MEDIA_ROOT.
    storages = read_settings(monkeypatch).get("STORAGES", global_settings.STORAGES)
    assert storages["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_a_bucket_makes_s3_the_storage_of_uploads_and_keeps_static_files(monkeypatch):
    names = read_settings(
        monkeypatch,
        CHAT_S3_BUCKET="chat-files",
        CHAT_S3_ENDPOINT_URL="http://minio:9000",
        CHAT_S3_REGION="eu-central-1",
    )
    default = names["STORAGES"]["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    options = default["OPTIONS"]
    assert options["bucket_name"] == "chat-files"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["region_name"] == "eu-central-1"
    # Private objects: no ACL sent, only signed links.
    assert options["default_acl"] is None
    assert options["querystring_auth"] is True
    assert names["STORAGES"]["staticfiles"] == {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }


def test_s3_and_nginx_sending_files_from_disk_are_refused_together(monkeypatch):
    with pytest.raises(ImproperlyConfigured) as refused:
        read_settings(monkeypatch, CHAT_S3_BUCKET="chat-files", CHAT_X_ACCEL_PREFIX="/_files/")
    assert "CHAT_X_ACCEL_PREFIX" in str(refused.value)
    assert "CHAT_S3_BUCKET" in str(refused.value)


def test_a_bad_endpoint_stops_start_up_naming_the_variable(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="CHAT_S3_ENDPOINT_URL"):
        read_settings(monkeypatch, CHAT_S3_BUCKET="chat-files", CHAT_S3_ENDPOINT_URL="minio:9000")


# --- Uploads in a bucket -------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    """A local S3 service on a free port; returns its address."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, monkeypatch):
    """An empty bucket on the local service, made the site's storage as the variables say."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = "chat-uploads"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    storages = read_settings(
        monkeypatch,
        CHAT_S3_BUCKET=name,
        CHAT_S3_ENDPOINT_URL=s3_server,
        CHAT_S3_REGION="us-east-1",
    )["STORAGES"]
    with override_settings(STORAGES=storages):
        yield client, name
    for stored in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=stored["Key"])
    client.delete_bucket(Bucket=name)


def _keys(client, bucket_name: str) -> set[str]:
    """The names of the objects in the bucket."""
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket_name).get("Contents", [])}


def _png() -> bytes:
    picture = io.BytesIO()
    Image.linear_gradient("L").resize((600, 300)).save(picture, "PNG")
    return picture.getvalue()


@pytest.mark.django_db
def test_upload_lands_in_the_bucket_is_served_by_the_site_and_leaves_with_its_row(
    bucket, client, make_user, django_capture_on_commit_callbacks
):
    s3, bucket_name = bucket
    alice = make_user("alice")
    client.force_login(alice)
    data = b"Minutes of the meeting, in plain text.\n" * 100

    response = client.post(
        "/uploads/", {"file": SimpleUploadedFile("minutes.txt", data, "text/plain")}
    )
    assert response.status_code == 201, response.content
    upload = Upload.objects.get(key=response.json()["id"])
    assert _keys(s3, bucket_name) == {upload.file.name}
    stored = s3.get_object(Bucket=bucket_name, Key=upload.file.name)
    assert stored["Body"].read() == data
    # Private: the owner's grant only, nothing for everyone or every AWS user.
    grants = s3.get_object_acl(Bucket=bucket_name, Key=upload.file.name)["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert all("URI" not in grant["Grantee"] for grant in grants)
    # A link to the bucket, should anything ever ask for one, is signed and expires.
    assert "Signature" in default_storage.url(upload.file.name)

    response = client.get(f"/uploads/{upload.key}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["X-Content-Type-Options"] == "nosniff"

    with django_capture_on_commit_callbacks(execute=True):
        upload.delete()
    assert _keys(s3, bucket_name) == set()


@pytest.mark.django_db
def test_a_picture_and_its_thumbnail_are_both_in_the_bucket(
    bucket, client, make_user, django_capture_on_commit_callbacks
):
    s3, bucket_name = bucket
    client.force_login(make_user("alice"))

    response = client.post("/uploads/", {"file": SimpleUploadedFile("chart.png", _png())})
    assert response.status_code == 201, response.content
    upload = Upload.objects.get(key=response.json()["id"])
    assert _keys(s3, bucket_name) == {upload.file.name, upload.thumb.name}

    response = client.get(f"/uploads/{upload.key}/thumb/")
    assert response.status_code == 200
    thumbnail = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert max(thumbnail.size) <= 320

    with django_capture_on_commit_callbacks(execute=True):
        upload.delete()
    assert _keys(s3, bucket_name) == set()
