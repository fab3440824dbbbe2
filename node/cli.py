"""``corridor node``: run the node (the bank API, and the pipeline unless told otherwise)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(help="Run the Corridor node.", no_args_is_help=True, add_completion=False)


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: the pipeline's JSON-RPC calls drowned the node's own lines.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="also run the pipeline (sender, watcher, webhooks)")
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the bank API under /v1 (OpenAPI at /docs). Settings: CORRIDOR_NODE_* (see node/config.py)."""
    import uvicorn

    from node.api.app import create_app
    from node.config import load_settings
    from node.pipeline.worker import Worker
    from node.services import build_services, operator_key, role_key
    from settlement.errors import CorridorError

    _logging(log_level)
    try:
        settings = load_settings()
        svc = build_services(settings)
        runner = (
            Worker(svc, role_key(settings, svc.manifest, "relayer"), operator_key(settings, svc.manifest))
            if worker and settings.worker
            else None
        )
    except CorridorError as exc:
        typer.echo(f"corridor node: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(create_app(svc, runner), host=host, port=port, log_level=log_level, access_log=False)


@app.command()
def openapi(
    output: Annotated[str, typer.Option("--output", "-o", help="write to this file instead of stdout")] = "",
) -> None:
    """Print the API's OpenAPI document (JSON), without a chain or a store: for client generators and reviews."""
    import json
    from pathlib import Path

    from node.api.app import openapi_document

    text = json.dumps(openapi_document(), indent=1) + "\n"
    if output:
        Path(output).write_text(text)
    else:
        typer.echo(text, nl=False)


@app.command()
def worker(
    metrics_host: Annotated[str, typer.Option(help="address to serve /metrics on")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="port to serve /metrics on (one per worker on a host; 0: none)", min=0, max=65535)
    ] = 9464,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the pipeline alone (sender, watcher, webhooks), beside API-only nodes (serve --no-worker).

    Replicas elect one leader through the store, under a lease whose epoch fences a deposed
    leader's writes; this process waits its turn if another leads. /metrics shows
    corridor_worker_leader and corridor_worker_lease_epoch. SIGTERM or SIGINT stops it cleanly
    and releases the lease, so another worker takes over at its next round.
    """
    import signal
    import threading

    from prometheus_client import start_http_server

    from node.config import load_settings
    from node.pipeline.worker import Worker
    from node.services import build_services, operator_key, role_key
    from settlement.errors import CorridorError

    _logging(log_level)
    try:
        settings = load_settings()
        svc = build_services(settings)
        runner = Worker(svc, role_key(settings, svc.manifest, "relayer"), operator_key(settings, svc.manifest))
    except CorridorError as exc:
        typer.echo(f"corridor node: {exc}", err=True)
        raise typer.Exit(2) from None
    if metrics_port:
        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            typer.echo(f"corridor node: cannot serve /metrics on {metrics_host}:{metrics_port}: {exc}", err=True)
            raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.start()
    stop.wait()
    runner.stop()


@app.command()
def backup(
    directory: Annotated[
        str, typer.Option("--dir", help="where to write it (default CORRIDOR_NODE_BACKUP_DIR or <data_dir>/backups)")
    ] = "",
) -> None:
    """Back the store up while the node runs, with a manifest beside it.

    SQLite's online backup, or pg_dump for PostgreSQL; the manifest says when, the schema revision,
    the watcher's checkpoint, how many transfers, the size and the SHA-256.
    """
    from pathlib import Path

    from node.config import load_settings
    from node.ops.backups import backup as take
    from node.store.db import Store
    from settlement.errors import CorridorError

    try:
        settings = load_settings()
        store = Store(settings.store_url)
        manifest = take(store, Path(directory) if directory else settings.backups, settings.backup_retention)
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor node backup: {exc}", err=True)
        raise typer.Exit(2) from None
    where = Path(directory) if directory else settings.backups
    typer.echo(
        f"{where / manifest.file}: {manifest.transfers} transfers, checkpoint block {manifest.checkpoint_block}, "
        f"{manifest.bytes} bytes, sha256 {manifest.sha256}"
    )


@app.command()
def restore(
    manifest: Annotated[str, typer.Argument(help="the backup's manifest (node-<time>.json)")],
    force: Annotated[bool, typer.Option(help="replace a store that holds transfers")] = False,
    recover: Annotated[
        bool, typer.Option(help="then bring the store forward from the chain (needs CORRIDOR_RPC_URL)")
    ] = True,
) -> None:
    """Restore the store from a backup (node stopped), then recover from the chain what came after.

    Transfers the store knew move on as the chain says, and those accepted after the backup that
    reached the chain are rebuilt from their transactions. Transfers accepted after the backup that
    never reached the chain are lost with it: their banks resubmit them (their UETRs answer 404; the
    same Idempotency-Key is safe).
    """
    from pathlib import Path

    from node.config import load_settings
    from node.ops.backups import recover as bring_forward
    from node.ops.backups import restore as put_back
    from node.store.db import Store
    from settlement.chain.rpc import Rpc
    from settlement.errors import CorridorError
    from settlement.manifest import Manifest

    try:
        settings = load_settings()
        restored = put_back(Path(manifest), settings.store_url, force)
        typer.echo(f"restored {restored.file}: {restored.transfers} transfers, checkpoint {restored.checkpoint_block}")
        if recover:
            store = Store(settings.store_url)
            with Rpc(settings.rpc_url) as rpc:
                done = bring_forward(store, rpc, Manifest.load(settings.manifest), settings.final)
            store.dispose()
            typer.echo(
                f"recovered from the chain to block {done.head} in {done.seconds:.1f} s: "
                f"{len(done.recovered)} transfers rebuilt from their transactions, {done.moved} moved on"
            )
            for uetr in done.recovered:
                typer.echo(f"  rebuilt {uetr}")
            typer.echo(
                f"transfers accepted after {restored.created_at} that are not found now never reached the chain: "
                "their banks resubmit them"
            )
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor node restore: {exc}", err=True)
        raise typer.Exit(2) from None
