FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tillsync ./tillsync
COPY streams ./streams
COPY connectors ./connectors
COPY schemas ./schemas
COPY config ./config
RUN pip install --no-cache-dir .
EXPOSE 6066
CMD ["tillsync", "worker"]
