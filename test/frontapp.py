"""The Django app of test/51-frontdoor.t and bench figure 9, in one file.

Copied into the app's repository as app.py (gunicorn: app:app), beside
a manage.py that imports it (collectstatic in the build step).
The page ("/") answers "VERSION /static/app.HASH.css", the stylesheet's
name as ManifestStaticFilesStorage fingerprinted it; /health answers the
release folder's name, or "bad" while the release holds BAD_HEALTH.
"""
from pathlib import Path

import django
from django.conf import settings

# resolved: the folder of the release this process runs, never current/
BASE_DIR = Path(__file__).resolve().parent
STORAGE = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
conf = dict(DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["django.contrib.staticfiles"],
            STATIC_URL="/static/",
            STATIC_ROOT=BASE_DIR / "public" / "static",
            STATICFILES_DIRS=[BASE_DIR / "assets"])
if django.VERSION >= (4, 2):
    conf["STORAGES"] = {"default": {"BACKEND":
                        "django.core.files.storage.FileSystemStorage"},
                        "staticfiles": {"BACKEND": STORAGE}}
else:
    conf["STATICFILES_STORAGE"] = STORAGE
settings.configure(**conf)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.templatetags.static import static  # noqa: E402
from django.urls import path  # noqa: E402

VERSION = (BASE_DIR / "VERSION").read_text().strip()


def page(request):
    return HttpResponse("%s %s\n" % (VERSION, static("app.css")),
                        content_type="text/plain")


def health(request):
    bad = (BASE_DIR / "BAD_HEALTH").exists()
    return HttpResponse("bad\n" if bad else BASE_DIR.name + "\n",
                        content_type="text/plain")


urlpatterns = [path("", page), path("health", health)]
app = get_wsgi_application()
