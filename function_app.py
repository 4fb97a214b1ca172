"""Azure Functions entry point: one FunctionApp, the functions live in capture/."""

import azure.functions as func

from capture.http import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)
