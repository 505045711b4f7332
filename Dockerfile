FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stats_gateway ./stats_gateway
COPY domains ./domains
COPY sql ./sql
RUN pip install --no-cache-dir -e .
USER nobody
EXPOSE 8000
CMD ["stats-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
