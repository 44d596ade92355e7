# The hub on the official ASP.NET Core runtime image. The image holds no SDK and builds
# nothing: it copies the publish output, made first on the build machine:
#   dotnet publish src/Postback -c Release -o publish
#   docker build -t postback .
# (The test suite runs that same publish output from a temporary directory; the base image
# itself could not be pulled where the tests were written, so the image is not built there.)
FROM mcr.microsoft.com/dotnet/aspnet:10.0

WORKDIR /app
COPY publish/ ./

# The image's unprivileged "app" user owns the data folder (SQLite, admin cookie keys).
RUN mkdir -p /data && chown app:app /data && chmod 0700 /data
VOLUME /data

ENV ASPNETCORE_ENVIRONMENT=Production \
    ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_NOLOGO=1 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    Postback__Storage__DataDirectory=/data

USER app
EXPOSE 8080
ENTRYPOINT ["dotnet", "/app/Postback.dll"]
