# imagine-bot: one process serving Discord and/or Telegram. Config in /config, SQLite in /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IMAGINE_BOT_CONFIG=/config/config.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY providers ./providers
RUN pip install . && useradd --system --uid 10001 --home-dir /data imagine \
    && mkdir -p /data /config && chown imagine /data

USER imagine
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["imagine-bot"]
CMD ["run"]
