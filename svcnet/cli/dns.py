"""``svcnet dns query NAME [TYPE]``: ask the cluster DNS from the machine, print like dig.

The cluster DNS is asked where pods ask it, on kube-dns's ClusterIP: the machine routes the
service range into the first node, whose Service proxy forwards it to a DNS pod. When that
path does not answer (a node stopped, the proxy not programmed yet), the query goes to the
DNS pods' own IPs, read from kube-dns's EndpointSlices, and the output says so: the user
learns both the answer and that the ClusterIP path is broken.

Names are completed as a pod in ``--namespace`` completes them (``search <ns>.svc.<zone>
svc.<zone> <zone>``, ndots:5), so ``svcnet dns query web`` finds the Service ``web`` of
``default``; a name ending in ``.`` or in the cluster zone is asked as given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import click

from svcnet.cli import control

ZONE = "cluster.local"
CLUSTER_IP_TIMEOUT = 1.0
POD_TIMEOUT = 1.0
EXIT_NO_SERVER = 9  # dig's code for "no servers could be reached"


@dataclass(frozen=True)
class Target:
    ip: str
    why: str  # shown after ;; SERVER:


def search_list(namespace: str, zone: str = ZONE) -> tuple[str, ...]:
    return (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)


def absolute_name(name: str, zone: str = ZONE) -> str | None:
    """The name to ask as is, or None when the search list applies."""
    if name.endswith("."):
        return name
    if name.lower() == zone or name.lower().endswith("." + zone):
        return name + "."
    if name.count(".") >= 5:  # ndots:5: the resolver tries such names as given first
        return name + "."
    return None


def dig_text(reply: object, server: Target, short: bool) -> str:
    """dig's layout: header, flags, question, answer/authority/additional, the server."""
    import dns.flags
    import dns.message
    import dns.opcode
    import dns.rcode

    assert isinstance(reply, dns.message.Message)
    if short:
        return "\n".join(rd.to_text() for rrset in reply.answer for rd in rrset)
    flags = dns.flags.to_text(reply.flags).lower()
    lines = [
        f";; ->>HEADER<<- opcode: {dns.opcode.to_text(reply.opcode())}, "
        f"status: {dns.rcode.to_text(reply.rcode())}, id: {reply.id}",
        f";; flags: {flags}; QUERY: {len(reply.question)}, ANSWER: "
        f"{sum(len(r) for r in reply.answer)}, AUTHORITY: "
        f"{sum(len(r) for r in reply.authority)}, ADDITIONAL: "
        f"{sum(len(r) for r in reply.additional)}",
        "",
        ";; QUESTION SECTION:",
        *(f";{q.to_text()}" for q in reply.question),
    ]
    for title, section in (
        ("ANSWER", reply.answer),
        ("AUTHORITY", reply.authority),
        ("ADDITIONAL", reply.additional),
    ):
        if section:
            lines += ["", f";; {title} SECTION:", *(rrset.to_text() for rrset in section)]
    lines += ["", f";; SERVER: {server.ip}#53 ({server.why})"]
    return "\n".join(lines)


async def _ask(name: str, qtype: str, ip: str, namespace: str, timeout: float) -> object:
    from svcnet.dns.query import query

    if qtype == "PTR" and _is_ip(name):  # dig -x: an address asks for its reverse name
        import dns.reversename

        name = dns.reversename.from_address(name).to_text()
    absolute = absolute_name(name)
    if absolute is not None:
        return await query(absolute, qtype, server=ip, timeout=timeout)
    return await query(name, qtype, server=ip, timeout=timeout, search=search_list(namespace))


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _why_failed(e: BaseException) -> str:
    import dns.exception

    if isinstance(e, dns.exception.Timeout):
        return "no answer"
    if isinstance(e, ConnectionRefusedError):
        return "refused (no ready DNS endpoint behind it?)"
    return str(e) or type(e).__name__


def run_query(
    data_dir: str, name: str, qtype: str, namespace: str, server: str | None, short: bool
) -> int:
    from svcnet.cluster.addons import dns_endpoints
    from svcnet.cluster.up import load_cluster

    cfg = load_cluster(data_dir)
    if cfg is None and server is None:
        click.echo(f"no svcnet cluster in {data_dir}: run `svcnet up` first", err=True)
        return 1
    if server is not None:
        targets = [Target(server, "--server")]
    else:
        assert cfg is not None
        targets = [Target(cfg.cluster_dns, "kube-dns ClusterIP")]
    failures: list[str] = []
    i = 0
    while i < len(targets):
        target = targets[i]
        timeout = CLUSTER_IP_TIMEOUT if i == 0 else POD_TIMEOUT
        try:
            reply = asyncio.run(_ask(name, qtype, target.ip, namespace, timeout))
        except Exception as e:  # dnspython's, OSError: any of them means "ask the next one"
            failures.append(f"{target.ip} ({target.why}): {_why_failed(e)}")
            if i == 0 and server is None and cfg is not None:
                note = f"kube-dns pod; the ClusterIP {cfg.cluster_dns} did not answer"
                targets += [Target(ip, note) for ip in dns_endpoints(cfg)]
            i += 1
            continue
        for failure in failures:
            click.echo(f";; {failure}", err=True)
        click.echo(dig_text(reply, target, short))
        return 0
    for failure in failures:
        click.echo(f";; {failure}", err=True)
    if server is None and len(targets) == 1:
        click.echo(";; kube-dns has no ready endpoint: see `svcnet status`", err=True)
    click.echo(";; no servers could be reached", err=True)
    return EXIT_NO_SERVER


@click.group()
def dns() -> None:
    """Ask the cluster DNS."""


@dns.command("query")
@click.argument("name")
@click.argument("qtype", metavar="[TYPE]", default="A")
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Complete relative names as a pod of this namespace does.",
)
@click.option("--server", default=None, help="Ask this address instead of kube-dns.")
@click.option("--short", is_flag=True, help="Only the answers' data, like dig +short.")
@click.option(
    "--name", "cluster_name", default="svcnet", show_default=True, help="The cluster's name."
)
@click.option("--data-dir", default=None)
def query_cmd(
    name: str,
    qtype: str,
    namespace: str,
    server: str | None,
    short: bool,
    cluster_name: str,
    data_dir: str | None,
) -> None:
    """Resolve NAME (TYPE: A, AAAA, SRV, PTR, CNAME, TXT, …; default A) with the cluster DNS."""
    raise SystemExit(
        run_query(
            data_dir or control.default_data_dir(cluster_name),
            name,
            qtype.upper(),
            namespace,
            server,
            short,
        )
    )


__all__ = ["absolute_name", "dig_text", "dns", "run_query", "search_list"]
