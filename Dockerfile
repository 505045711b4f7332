# Build a wheel, then install it (not editable): the image runs the installed package,
# migrations included (sql/ ships in the wheel), with no source tree on the path.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stats_gateway ./stats_gateway
COPY domains ./domains
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /srv
USER nobody
EXPOSE 8000
CMD ["stats-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
