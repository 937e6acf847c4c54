"""`tools diagram`: the Mermaid picture follows the plan's references (per stack), and is valid Mermaid."""

from __future__ import annotations

import pytest

from tests.harness import stack_plan
from tools import diagram as dg
from tools.__main__ import main
from tools.plan import write_json

T = dg


def _diagram(plan):
    d = dg.build(plan)
    return d, dg.render_mermaid(d)


def _one(plan, typ, pred=lambda r: True):
    found = [r for r in plan.of_type(typ) if pred(r)]
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]


def _sources(d, nid, traffic_only=True):
    return {e.src for e in d.edges_into(nid) if e.traffic or not traffic_only}


def test_cloudfront_fronts_alb_and_buckets_with_waf_attached(plan):
    d, text = _diagram(plan)
    cdn = d.node_for(_one(plan, T.T_DIST))
    alb = d.node_for(_one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "application"))
    waf = d.node_for(_one(plan, T.T_WAF))
    assert d.has_edge(dg.INTERNET, cdn)
    assert d.has_edge(cdn, alb) and f"{cdn} -->" in text and f"| {alb}" in text
    attached = [e for e in d.edges if e.src == waf and e.dst == cdn]
    assert attached and attached[0].dotted and attached[0].labels == ["attached"]
    # Both S3 origins (web assets, user files) hang off the distribution; the log buckets are left out.
    web = d.node_for(_one(plan, T.T_BUCKET, lambda r: "-web-" in r["props"]["bucket"]))
    files = d.node_for(_one(plan, T.T_BUCKET, lambda r: "-files-" in r["props"]["bucket"]))
    assert d.has_edge(cdn, web) and d.has_edge(cdn, files)
    assert not any("-logs-" in r["props"]["bucket"] and d.node_for(r) for r in plan.of_type(T.T_BUCKET))


def test_nlb_forwards_to_every_turn_node(plan):
    d, _ = _diagram(plan)
    nlb = d.node_for(_one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "network"))
    turn_tg = _one(plan, T.T_TG, lambda r: r["props"]["targetType"] == "instance")
    turns = [r for r in plan.of_type(T.T_EC2) if "turn" in r["name"]]
    assert turns and d.has_edge(nlb, d.node_for(turn_tg))
    for inst in turns:
        assert d.has_edge(d.node_for(turn_tg), d.node_for(inst)), inst["name"]
        assert d.has_edge(dg.INTERNET, d.node_for(inst))  # TURN/STUN over UDP goes straight to the node
    # The NLB's TURNS path is shown by the target group, not by a second (SG) edge.
    assert not any(d.has_edge(nlb, d.node_for(i)) for i in turns)


def test_data_stores_are_reachable_only_from_the_cluster_nodes(plan):
    d, _ = _diagram(plan)
    node_sg = _one(plan, T.T_SG, lambda r: r["name"].endswith("eks-nodes-sg"))
    workers = d.node_for(node_sg)
    assert workers and d.nodes[workers].group == node_sg["parent"]  # drawn in the Cluster tier
    db = _one(plan, T.T_RDS, lambda r: not r["props"].get("replicateSourceDb"))
    stores = [db, *plan.of_type(T.T_REDIS)]
    # the NAS bridge's DMS instance (nas-migration) is the database's one other client
    dms = {d.node_for(r) for r in plan.of_type("aws:dms/replicationInstance:ReplicationInstance")}
    for store in stores:
        nid = d.node_for(store)
        expected = {workers} | (dms if store is db else set())
        assert _sources(d, nid) == expected, (store["name"], _sources(d, nid))
        assert not d.has_edge(dg.INTERNET, nid)
    assert [e.labels for e in d.edges if e.src == workers and e.dst == d.node_for(db)] == [[f"tcp {db['props']['port']}"]]


def test_load_balancers_reach_the_nodes_through_target_groups(plan):
    d, _ = _diagram(plan)
    workers = d.node_for(_one(plan, T.T_SG, lambda r: r["name"].endswith("eks-nodes-sg")))
    alb = d.node_for(_one(plan, T.T_LB, lambda r: r["props"]["loadBalancerType"] == "application"))
    api_tg = d.node_for(_one(plan, T.T_TG, lambda r: r["name"].endswith("api-tg")))
    # The ALB's api group reaches the co-talk-api pods (its TargetGroupBinding), not bare nodes.
    api = d.node_for(_one(plan, "kubernetes:helm.sh/v3:Release", lambda r: r["props"]["name"] == "co-talk-api"))
    assert d.has_edge(alb, api_tg) and d.has_edge(api_tg, api)
    # ... and CloudFront's /api/* leads there: viewer -> CloudFront -> ALB -> api group -> pods.
    cdn = d.node_for(_one(plan, T.T_DIST))
    (edge,) = [e for e in d.edges if e.src == cdn and e.dst == alb]
    assert "/api/*" in " ".join(edge.labels)
    assert not d.has_edge(alb, workers)  # implied by the path, not drawn twice


def test_per_az_counts_are_compact():
    for stack, nats, azs in (("production", 3, 3), ("dev", 1, 2)):
        d, text = _diagram(stack_plan(stack))
        assert f'"{nats} × NAT gateway"' in text, stack
        assert f"subnets: {azs} public / {azs} private / {azs} isolated" in text, stack
        assert "rtb" not in text and "route table" not in text.lower()


def test_protected_markers_follow_protect():
    prod, dev = stack_plan("production"), stack_plan("dev")
    d, text = _diagram(prod)
    db = _one(prod, T.T_RDS, lambda r: not r["props"].get("replicateSourceDb"))
    assert db["protect"] and dg.LOCK in d.nodes[d.node_for(db)].label
    for rg in prod.of_type(T.T_REDIS):
        assert dg.LOCK in d.nodes[d.node_for(rg)].label
    # Replicas are not protected (re-creatable from the primary): no lock on their node.
    replicas = [r for r in prod.of_type(T.T_RDS) if r["props"].get("replicateSourceDb")]
    assert replicas and dg.LOCK not in d.nodes[d.node_for(replicas[0])].label
    assert not any(r["protect"] for r in dev.resources)
    _, dev_text = _diagram(dev)
    assert dg.LOCK not in dev_text and "class " not in dev_text.replace("classDef", "")


def test_output_is_structurally_valid_mermaid(plan):
    d, text = _diagram(plan)
    assert dg.check_mermaid(text) == []
    assert text.startswith("flowchart LR\n")
    assert text.count("subgraph ") == text.count("\n  end\n") >= 8
    assert all(dg.ID_RE.match(n) for n in d.nodes)
    # One subgraph per tier component, titled with the component type.
    for kind in ("Network", "Edge", "Dns", "Waf", "Cdn", "Cluster", "Signaling", "Database", "Cache", "FileStorage", "DataKey", "Turn"):
        assert f'["{kind} · ' in text, kind


def test_the_checker_catches_broken_mermaid():
    _, text = _diagram(stack_plan("dev"))
    assert dg.check_mermaid(text.replace("\n  end\n", "\n", 1))  # unbalanced subgraph
    assert dg.check_mermaid(text + "  internet --> nowhere\n")  # undeclared endpoint
    assert dg.check_mermaid(text + '  bad["a "quoted" label"]\n')  # raw quote
    assert dg.check_mermaid(text + '  9lives["x"]\n')  # invalid id
    assert dg.check_mermaid(text.replace("flowchart LR", "graph TD", 1))


def test_ids_and_labels_are_sanitised():
    assert dg.sanitize("9-odd.name/x") == "n_9_odd_name_x"
    assert dg.sanitize("end") == "end_" and dg.ID_RE.match(dg.sanitize("---"))
    assert dg.escape('say "hi" <b> #1<br/>next') == "say #quot;hi#quot; #lt;b#gt; #35;1<br/>next"


def test_cli_prints_the_diagram(tmp_path, capsys):
    path = tmp_path / "plan.json"
    write_json(stack_plan("production"), path)
    assert main(["diagram", "--plan", str(path), "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR") and dg.check_mermaid(out) == []
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
