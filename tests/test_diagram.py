"""`tools diagram`: the Mermaid picture follows the plan's references (per stack), and is valid Mermaid."""

from __future__ import annotations

import re

import pytest

from tests.harness import stack_plan
from tools import diagram as dg
from tools.__main__ import main
from tools.plan import write_json

T = dg

# ------------------------------------------------------------------ reading a Diagram (tests only)


def node_for(d: dg.Diagram, resource: dict) -> str | None:
    return d.node_of.get(resource["urn"])


def has_edge(d: dg.Diagram, src: str, dst: str) -> bool:
    return any(e.src == src and e.dst == dst for e in d.edges)


def edges_into(d: dg.Diagram, dst: str) -> list[dg.Edge]:
    return [e for e in d.edges if e.dst == dst]


def check_mermaid(text: str) -> list[str]:
    """Structural checks of our Mermaid output (no browser needed): header, balanced
    subgraph/end, valid ids, every edge endpoint declared, no raw quotes inside labels."""
    problems: list[str] = []
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("%%")]
    if not lines or lines[0] != "flowchart LR":
        problems.append("first line is not 'flowchart LR'")
    declared: set[str] = set()
    depth = 0
    node_re = re.compile(r'^([^\s\[\(\{]+)(\[\("|\["|\(\("|\{\{")(.*)("\)\]|"\]|"\)\)|"\}\})$')
    edge_re = re.compile(r'^(\S+) (-->|-\.->)(?:\|"(.*)"\|)? (\S+)$')
    edges = []
    for ln in lines[1:]:
        if ln.startswith("subgraph "):
            depth += 1
            m = re.match(r'^subgraph (\S+?)\["(.*)"\]$', ln)
            if not m or not dg.ID_RE.match(m.group(1)):
                problems.append(f"bad subgraph line: {ln}")
            elif '"' in m.group(2):
                problems.append(f"raw quote in subgraph title: {ln}")
            continue
        if ln == "end":
            depth -= 1
            if depth < 0:
                problems.append("'end' without subgraph")
            continue
        if ln.startswith(("classDef ", "class ")):
            continue
        m = edge_re.match(ln)
        if m:
            if m.group(3) is not None and '"' in m.group(3):
                problems.append(f"raw quote in edge label: {ln}")
            edges.append((m.group(1), m.group(4)))
            continue
        m = node_re.match(ln)
        if m:
            nid, label = m.group(1), m.group(3)
            if not dg.ID_RE.match(nid) or nid.lower() in dg._RESERVED:
                problems.append(f"invalid node id {nid!r}")
            if '"' in label:
                problems.append(f"raw quote in label of {nid}")
            if nid in declared:
                problems.append(f"node {nid} declared twice")
            declared.add(nid)
            continue
        problems.append(f"unrecognised line: {ln}")
    if depth != 0:
        problems.append(f"unbalanced subgraph/end (depth {depth})")
    for a, b in edges:
        for end in (a, b):
            if end not in declared:
                problems.append(f"edge endpoint {end} is not declared")
    return problems


def _diagram(plan):
    d = dg.build(plan)
    return d, dg.render_mermaid(d)


def _one(plan, typ, pred=lambda r: True):
    found = [r for r in plan.of_type(typ) if pred(r)]
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]


def _sources(d, nid, traffic_only=True):
    return {e.src for e in edges_into(d, nid) if e.traffic or not traffic_only}


def test_cloudfront_fronts_alb_and_buckets_with_waf_attached(plan):
    d, text = _diagram(plan)
    cdn = node_for(d, _one(plan, T.T_DIST))
    alb = node_for(d, _one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "application"))
    waf = node_for(d, _one(plan, T.T_WAF))
    assert has_edge(d, dg.INTERNET, cdn)
    assert has_edge(d, cdn, alb) and f"{cdn} -->" in text and f"| {alb}" in text
    attached = [e for e in d.edges if e.src == waf and e.dst == cdn]
    assert attached and attached[0].dotted and attached[0].labels == ["attached"]
    # Both S3 origins (web assets, user files) hang off the distribution; the log buckets are left out.
    web = node_for(d, _one(plan, T.T_BUCKET, lambda r: "-web-" in r["props"]["bucket"]))
    files = node_for(d, _one(plan, T.T_BUCKET, lambda r: "-files-" in r["props"]["bucket"]))
    assert has_edge(d, cdn, web) and has_edge(d, cdn, files)
    assert not any("-logs-" in r["props"]["bucket"] and node_for(d, r) for r in plan.of_type(T.T_BUCKET))


def test_nlb_forwards_to_every_turn_node(plan):
    d, _ = _diagram(plan)
    turns = [r for r in plan.of_type(T.T_EC2) if "turn" in r["name"]]
    if plan["config"]["turn"].get("tlsEntry", "nlb") == "none":  # no NLB for TURNS: only the direct path
        assert turns and not [r for r in plan.of_type(T.T_LB) if r["props"]["loadBalancerType"] == "network"]
        assert all(has_edge(d, dg.INTERNET, node_for(d, inst)) for inst in turns)
        return
    nlb = node_for(d, _one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "network"))
    turn_tg = _one(plan, T.T_TG, lambda r: r["props"]["targetType"] == "instance")
    assert turns and has_edge(d, nlb, node_for(d, turn_tg))
    for inst in turns:
        assert has_edge(d, node_for(d, turn_tg), node_for(d, inst)), inst["name"]
        assert has_edge(d, dg.INTERNET, node_for(d, inst))  # TURN/STUN over UDP goes straight to the node
    # The NLB's TURNS path is shown by the target group, not by a second (SG) edge.
    assert not any(has_edge(d, nlb, node_for(d, i)) for i in turns)


def test_data_stores_are_reachable_only_from_the_cluster_nodes(plan):
    d, _ = _diagram(plan)
    node_sg = _one(plan, T.T_SG, lambda r: r["name"].endswith("eks-nodes-sg"))
    workers = node_for(d, node_sg)
    assert workers and d.nodes[workers].group == node_sg["parent"]  # drawn in the Cluster tier
    db = _one(plan, T.T_RDS, lambda r: not r["props"].get("replicateSourceDb"))
    stores = [db, *plan.of_type(T.T_REDIS)]
    # the NAS bridge's DMS instance (nas-migration) is the database's one other client
    dms = {node_for(d, r) for r in plan.of_type("aws:dms/replicationInstance:ReplicationInstance")}
    for store in stores:
        nid = node_for(d, store)
        expected = {workers} | (dms if store is db else set())
        assert _sources(d, nid) == expected, (store["name"], _sources(d, nid))
        assert not has_edge(d, dg.INTERNET, nid)
    assert [e.labels for e in d.edges if e.src == workers and e.dst == node_for(d, db)] == [[f"tcp {db['props']['port']}"]]


def test_load_balancers_reach_the_nodes_through_target_groups(plan):
    d, _ = _diagram(plan)
    workers = node_for(d, _one(plan, T.T_SG, lambda r: r["name"].endswith("eks-nodes-sg")))
    alb = node_for(d, _one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "application"))
    api_tg = node_for(d, _one(plan, T.T_TG, lambda r: r["name"].endswith("api-tg")))
    # The ALB's api group reaches the co-talk-api pods (its TargetGroupBinding), not bare nodes.
    api = node_for(d, _one(plan, "kubernetes:helm.sh/v3:Release", lambda r: r["props"]["name"] == "co-talk-api"))
    assert has_edge(d, alb, api_tg) and has_edge(d, api_tg, api)
    # ... and CloudFront's /api/* leads there: viewer -> CloudFront -> ALB -> api group -> pods.
    cdn = node_for(d, _one(plan, T.T_DIST))
    (edge,) = [e for e in d.edges if e.src == cdn and e.dst == alb]
    assert "/api/*" in " ".join(edge.labels)
    # An internal ALB is reached through its VPC origin, which the edge says.
    internal = _one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "application")["props"]["internal"]
    assert ("via VPC origin" in " ".join(edge.labels)) is internal
    assert not has_edge(d, alb, workers)  # implied by the path, not drawn twice


def test_per_az_counts_are_compact():
    for stack, nats, azs in (("production", 3, 3), ("dev", 0, 2)):
        d, text = _diagram(stack_plan(stack))
        assert (f'"{nats} × NAT gateway"' if nats else '"NAT instance (ASG of 1)"') in text, stack
        assert f"subnets: {azs} public / {azs} private / {azs} isolated" in text, stack
        assert "rtb" not in text and "route table" not in text.lower()


def test_protected_markers_follow_protect():
    prod, dev = stack_plan("production"), stack_plan("dev")
    d, text = _diagram(prod)
    db = _one(prod, T.T_RDS, lambda r: not r["props"].get("replicateSourceDb"))
    assert db["protect"] and dg.LOCK in d.nodes[node_for(d, db)].label
    for rg in prod.of_type(T.T_REDIS):
        assert dg.LOCK in d.nodes[node_for(d, rg)].label
    # Replicas are not protected (re-creatable from the primary): no lock on their node.
    replicas = [r for r in prod.of_type(T.T_RDS) if r["props"].get("replicateSourceDb")]
    assert replicas and dg.LOCK not in d.nodes[node_for(d, replicas[0])].label
    assert not any(r["protect"] for r in dev.resources)
    _, dev_text = _diagram(dev)
    assert dg.LOCK not in dev_text and "class " not in dev_text.replace("classDef", "")


def test_output_is_structurally_valid_mermaid(plan):
    d, text = _diagram(plan)
    assert check_mermaid(text) == []
    assert text.startswith("flowchart LR\n")
    assert text.count("subgraph ") == text.count("\n  end\n") >= 8
    assert all(dg.ID_RE.match(n) for n in d.nodes)
    # One subgraph per tier component, titled with the component type.
    cache = "InClusterCache" if plan["config"]["cache"]["placement"] == "cluster" else "Cache"
    for kind in ("Network", "Edge", "Dns", "Waf", "Cdn", "Cluster", "Signaling", "Database", cache, "FileStorage", "DataKey", "Turn"):
        assert f'["{kind} · ' in text, kind


def test_the_checker_catches_broken_mermaid():
    _, text = _diagram(stack_plan("dev"))
    assert check_mermaid(text.replace("\n  end\n", "\n", 1))  # unbalanced subgraph
    assert check_mermaid(text + "  internet --> nowhere\n")  # undeclared endpoint
    assert check_mermaid(text + '  bad["a "quoted" label"]\n')  # raw quote
    assert check_mermaid(text + '  9lives["x"]\n')  # invalid id
    assert check_mermaid(text.replace("flowchart LR", "graph TD", 1))


def test_ids_and_labels_are_sanitised():
    assert dg.sanitize("9-odd.name/x") == "n_9_odd_name_x"
    assert dg.sanitize("end") == "end_" and dg.ID_RE.match(dg.sanitize("---"))
    assert dg.escape('say "hi" <b> #1<br/>next') == "say #quot;hi#quot; #lt;b#gt; #35;1<br/>next"


def test_cli_prints_the_diagram(tmp_path, capsys):
    path = tmp_path / "plan.json"
    write_json(stack_plan("production"), path)
    assert main(["diagram", "--plan", str(path), "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR") and check_mermaid(out) == []
    assert "production_cdn -->" in out


@pytest.mark.parametrize("content", [None, "not json", '{"version": 2, "resources": []}'])
def test_cli_unreadable_plan_exits_1(tmp_path, capsys, content):
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    assert main(["diagram", "--plan", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diagram", "--plan", str(tmp_path / "p.json"), "--format", "svg"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["diagram"])
    assert exc.value.code == 2
