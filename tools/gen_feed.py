#!/usr/bin/python3
"""tools/gen_feed.py: writes deploy/feed/sample.jsonl, the sample hotline feed for
October 2026 over the sample registry, in the scenario feed (docs/formats.md) format, sorted by `at`.
Deterministic (fixed seed, Debian's python3, stdlib only); --expect FILE also writes
what intake should decide for each ticket (R-I3..R-I5), to check a run against.
    /usr/bin/python3 tools/gen_feed.py [-o deploy/feed/sample.jsonl] [--expect FILE]"""
# What the feed holds: ~330 tickets of every request type over the registry's
# compounds; hotline-coded and keyword-classified ones; callers who call again
# within 7 days (repeats, R-I5) and near misses; unmatched and ambiguous addresses
# and unclassifiable content (manual triage, completed later by `triage` lines,
# some left waiting); CONSULT and SUGGEST calls (recorded, not dispatched);
# satisfaction callbacks; exemptions; a hotline resend (DUPLICATE); three requests
# intake refuses (a conflicting resend, a ticket without address or compound, a
# callback for an unknown ticket); two `update` lines for the referral daemon; and
# a watermark at the end of each day, the last at 2026-11-01T00:00:00+08:00.
import argparse
import csv
import datetime as dt
import json
import os
import random
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REG = os.path.join(ROOT, "deploy", "registry")
TZ = dt.timezone(dt.timedelta(hours=8))
SEED = 20261001
START = dt.date(2026, 10, 1)
DAYS = 31

# ---- content templates: each is classified by its keywords (R-I3) -----------
TEMPLATES = {
    "PS_SANITATION": ["{b}号楼楼道杂物无人清理，已经一个多月了",
                      "小区垃圾清运不及时，垃圾桶周边臭气熏天",
                      "小区主干道无人清扫，落叶和烟头随处可见",
                      "小区环境脏乱，物业保洁人员长期不到岗"],
    "PS_GREENING": ["小区绿地无人养护，杂草长到半人高",
                    "中心花园草坪枯死，物业一直不补种",
                    "{b}号楼前树木修剪不及时，树枝挡住窗户"],
    "PS_ORDER": ["小区外来车辆随意进出，停车秩序混乱",
                 "小区门禁形同虚设，陌生人随意进出",
                 "地库乱停车严重，车辆无法正常通行"],
    "PS_FACILITY": ["{b}号楼单元门损坏两周无人维修",
                    "小区路灯不亮，晚上出行不安全",
                    "{b}号楼顶层屋顶渗水，物业推诿不修",
                    "小区监控损坏，自行车被盗也查不到",
                    "地下室管道堵塞，污水漫到车位"],
    "PS_ATTITUDE": ["物业客服态度恶劣，报修电话打了多次没人管",
                    "物业保安辱骂业主，要求物业公司道歉",
                    "物业工作人员服务态度差，推诿扯皮"],
    "PS_FEES": ["物业费上涨未经业主大会表决",
                "物业乱收费，装修押金迟迟不退",
                "小区停车费擅自涨价，收费不公示"],
    "PS_DISCLOSURE": ["物业公共收益去向不明，账目不公开",
                      "电梯广告收入从未向业主公示",
                      "物业拒不落实六公开制度"],
    "PS_PRIVACY": ["物业泄露业主信息，天天接到推销电话",
                   "本人信息被泄露，怀疑物业把业主名单卖给中介"],
    "PS_SERVICE_STOP": ["物业跑路，小区无人管理，垃圾堆积",
                        "物业公司突然终止服务，电梯无人维保",
                        "原物业合同到期拒不交接，新物业无法进场"],
    "PS_COERCION": ["物业以催缴物业费为由停水停电",
                    "物业限卡，不交物业费就不给电卡充值",
                    "物业把欠费业主的门禁卡停用"],
    "V_ILLEGAL_BUILD": ["{b}号楼顶楼加盖彩钢房",
                        "一楼业主在院子里私搭乱建",
                        "邻居在露台搭建阳光房，影响采光"],
    "V_GREEN_OCCUPY": ["有业主毁绿种菜，公共绿地被圈占",
                       "业主在楼前绿地种菜并施农家肥",
                       "物业私自砍伐树木"],
    "V_RENOVATION": ["楼上装修拆除承重墙，楼体安全堪忧",
                     "{b}号楼有住户砸墙改结构",
                     "楼下违规装修，把阳台改成厨房"],
    "V_NOISE": ["小区夜间施工，凌晨两点还在施工",
                "楼下广场舞音响太大，晚上十点还不停",
                "楼上住户长期噪音扰民"],
    "V_FIRE_LANE": ["小区消防通道被私家车长期占用",
                    "{b}号楼安全出口被锁死",
                    "楼道堆物严重，堵塞通道"],
    "V_EBIKE": ["有住户电动车上楼在家充电",
                "{b}号楼有人从窗户飞线充电",
                "住户在楼道充电，存在火灾隐患"],
    "V_PETS": ["小区遛狗不拴绳，孩子被吓哭",
               "楼顶有人养鸽子，粪便污染严重",
               "小区犬只伤人，物业不管"],
    "V_HAZMAT": ["一楼门面房内存放多个液化气罐",
                 "车库里有人囤积汽油"],
    "V_ELEVATOR": ["{b}号楼电梯困人，半小时没人来救",
                   "{b}号楼电梯故障频繁，老人上下楼困难",
                   "{b}号楼电梯异响，乘坐很害怕"],
    "V_GARBAGE": ["有人在小区空地乱倒垃圾",
                  "装修建筑垃圾堆在楼下无人清运",
                  "小区垃圾未分类，混装混运"],
    "V_MAINT_FUND": ["物业擅自动用维修资金，业主不知情",
                     "维修基金使用情况从不说明"],
    "V_OWNERS_COMMITTEE": ["业委会成员私自与物业签订合同",
                           "业主委员会换届选举程序违规"],
    "V_CHARGING_BLOCK": ["物业阻挠安装充电桩",
                         "物业不让5G基站进小区",
                         "宽带入户被物业收取进场费"],
}
CONSULT = [("咨询物业费上涨需要走什么程序", "PS_FEES"),
           ("咨询维修基金如何申请使用", "V_MAINT_FUND"),
           ("咨询业主委员会如何成立", "V_OWNERS_COMMITTEE"),
           ("咨询小区充电桩安装流程", "V_CHARGING_BLOCK"),
           ("咨询垃圾分类投放时间", "V_GARBAGE")]
SUGGEST = [("建议小区增加充电桩", "V_CHARGING_BLOCK"),
           ("建议物业加强绿化日常管护", "PS_GREENING"),
           ("建议物业定期公开公共收益账目", "PS_DISCLOSURE"),
           ("建议小区增设门禁，加强外来人员管理", "PS_ORDER")]
HELP = [("{b}号楼电梯困人，请求救援", "V_ELEVATOR", 1),
        ("家里漏水，楼上无人，请求帮助联系物业", "PS_FACILITY", 0),
        ("下水管道堵塞，污水倒灌，请求帮助", "PS_FACILITY", 0),
        ("物业以欠费为由停水停电，家中老人无法生活", "PS_COERCION", 1)]
UNCLASSIFIED = ["小区地下车库积水严重，车辆无法通行", "小区门口公交站牌被撞坏",
                "小区内道路坑洼不平，老人容易摔倒", "咨询公积金提取需要什么材料"]
UNMATCHED = ["人民路128号", "解放大道与建设路交叉口", "城南批发市场东门", "和平街道幼儿园旁边",
             "新华区火车站广场"]
AMBIGUOUS = "阳光花园与光明小区之间的道路"
# Categories of COMPLAINT/REPORT, weighted towards property-service complaints.
COMPLAINT_CATS = (["PS_SANITATION"] * 6 + ["PS_ORDER"] * 5 + ["PS_FACILITY"] * 6 +
                  ["PS_ATTITUDE"] * 3 + ["PS_FEES"] * 4 + ["PS_GREENING"] * 3 +
                  ["PS_DISCLOSURE"] * 2 + ["PS_PRIVACY"] + ["PS_SERVICE_STOP"] +
                  ["PS_COERCION"] + ["V_NOISE"] * 4 + ["V_FIRE_LANE"] * 3 + ["V_EBIKE"] * 3 +
                  ["V_PETS"] * 2 + ["V_GARBAGE"] * 3 + ["V_RENOVATION"] * 2 +
                  ["V_ILLEGAL_BUILD"] * 2 + ["V_GREEN_OCCUPY"] + ["V_ELEVATOR"] * 2 +
                  ["V_CHARGING_BLOCK"] + ["V_OWNERS_COMMITTEE"])
REPORT_CATS = ["V_ILLEGAL_BUILD", "V_HAZMAT", "V_FIRE_LANE", "V_EBIKE", "V_MAINT_FUND",
               "V_RENOVATION", "V_GREEN_OCCUPY", "V_GARBAGE", "PS_PRIVACY"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
         "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "玉兰", "国强", "海燕",
         "志强", "建国", "淑珍"]
SATISFACTION = ["SATISFIED"] * 12 + ["BASICALLY_SATISFIED"] * 5 + ["UNSATISFIED"] * 3
EXEMPT_REASONS = ["经核实为业主之间的邻里纠纷，不属物业服务范畴",
                  "来电人反映问题与事实不符，经街道核查不予计入",
                  "同一问题已由其他渠道办结，核减不计"]


def read_csv(name):
    with open(os.path.join(REG, name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def norm(s):
    """svc_text_normalize: white space and zero-width characters dropped,
    full-width ASCII folded, ASCII lower-cased (R-I3/R-I4 matching)."""
    out = []
    for ch in s:
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            ch = chr(o - 0xFEE0)
        if ch.isspace() or ch in "\u200b\u200c\u200d\u2060\ufeff":
            continue
        out.append(ch.lower() if ch.isascii() else ch)
    return "".join(out)


def classify(hotline, keywords, hotline_code, content):
    """R-I3 as intake decides it: the mapped hotline code, else the keyword of
    the highest priority (then the earliest in the text, then the first
    listed), else OTHER. keywords: [(normalised keyword, category, priority)]."""
    if hotline_code in hotline:
        return hotline[hotline_code]
    text, best = norm(content), None
    for order, (kw, cat, prio) in enumerate(keywords):
        pos = text.find(kw)
        if pos >= 0:
            key = (-prio, pos, order)
            if best is None or key < best[0]:
                best = (key, cat)
    return best[1] if best else "OTHER"


class Registry:
    def __init__(self):
        self.compounds = read_csv("compounds.csv")
        self.by_code = {c["code"]: c for c in self.compounds}
        self.streets = {s["code"]: s for s in read_csv("streets.csv")}
        self.districts = {d["code"]: d["name"] for d in read_csv("districts.csv")}
        self.hotline = {r["hotline_code"]: r["category"] for r in read_csv("hotline_categories.csv")}
        self.code_of = {}
        for code, cat in self.hotline.items():
            self.code_of.setdefault(cat, code)
        self.keywords = [(norm(k["keyword"]), k["category"], int(k["priority"]))
                         for k in read_csv("keywords.csv")]
        self.names = []
        for c in self.compounds:
            for n in [c["name"]] + [a for a in c["aliases"].split("|") if a]:
                self.names.append((norm(n), c["code"]))

    def classify(self, hotline_code, content):
        """R-I3: the mapped hotline code, else the best keyword, else OTHER."""
        return classify(self.hotline, self.keywords, hotline_code, content)

    def match(self, code, address):
        """R-I4: a known code, else the longest name or alias in the address."""
        if code in self.by_code:
            return code
        text, best, found = norm(address), 0, set()
        for n, c in self.names:
            if n in text:
                if len(n) > best:
                    best, found = len(n), {c}
                elif len(n) == best:
                    found.add(c)
        return found.pop() if len(found) == 1 else ""


def iso(t):
    return t.isoformat(timespec="seconds")


class Gen:
    def __init__(self, reg):
        self.reg = reg
        self.rnd = random.Random(SEED)
        self.tickets = []  # dicts with an "_at" datetime and private "_" fields
        self.lines = []    # (at, order, obj)
        self.callers = self.make_callers()

    def make_callers(self):
        """About 220 residents, each living in one compound, and a few passers-by."""
        rnd, out, used = self.rnd, [], set()
        weights = [int(c["households"]) for c in self.reg.compounds]
        for i in range(220):
            while True:
                phone = rnd.choice(["138", "139", "135", "137", "150", "158", "186", "187", "133",
                                    "189"]) + f"{rnd.randrange(10 ** 8):08d}"
                if phone not in used:
                    used.add(phone)
                    break
            comp = rnd.choices(self.reg.compounds, weights=weights)[0]["code"]
            out.append({"phone": phone, "name": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
                        "compound": comp})
        return out

    def address(self, code, b=None, with_prefix=None):
        """An address in compound code's compound (building b when given)."""
        rnd, c = self.rnd, self.reg.by_code[code]
        names = [c["name"]] + [a for a in c["aliases"].split("|") if a]
        name = rnd.choice(names)
        street = self.reg.streets[c["street"]]
        prefix = ""
        if with_prefix if with_prefix is not None else rnd.random() < 0.3:
            prefix = self.reg.districts[street["district"]] + street["name"]
        if "号院" in name:
            return f"{prefix}{name}{b or rnd.randint(1, 4)}号楼"
        return f"{prefix}{name}{b or rnd.randint(1, 18)}号楼{rnd.randint(1, 4)}单元"

    def at_on(self, day, lo_h=7, hi_h=22):
        d = START + dt.timedelta(days=day)
        secs = self.rnd.randint(lo_h * 3600, hi_h * 3600 + 1799)
        return dt.datetime(d.year, d.month, d.day, tzinfo=TZ) + dt.timedelta(seconds=secs)

    def ticket(self, at, rtype, content, caller, code, address, cat, hotline="", urgency=0,
               **extra):
        rnd = self.rnd
        t = {"type": "ticket", "_at": at, "ticket_no": None, "request_type": rtype,
             "hotline_category": hotline,
             "caller_phone": caller["phone"] if caller else "",
             "caller_name": caller["name"] if caller else "",
             "compound_code": code if code and rnd.random() < 0.2 else "",
             "address": address, "content": content, "_cat": cat}
        if rnd.random() < 0.3 and t["compound_code"] == "" and code:
            street = self.reg.streets[self.reg.by_code[code]["street"]]
            t["district"] = self.reg.districts[street["district"]]
        if urgency:
            t["urgency"] = 1
        t.update(extra)
        self.tickets.append(t)
        return t

    def content(self, cat, b=None):
        return self.rnd.choice(TEMPLATES[cat]).format(b=b or self.rnd.randint(1, 18))

    def hotline_code(self, cat):
        """About a third of the calls carry the hotline's own category code."""
        if cat in self.reg.code_of and self.rnd.random() < 0.35:
            return self.reg.code_of[cat]
        return ""

    def daily(self):
        rnd = self.rnd
        for day in range(DAYS):
            for _ in range(rnd.randint(7, 12)):
                caller = rnd.choice(self.callers)
                code = caller["compound"]
                b = rnd.randint(1, 4 if "号院" in self.reg.by_code[code]["name"] else 18)
                roll = rnd.random()
                if roll < 0.58:
                    rtype, cat = "COMPLAINT", rnd.choice(COMPLAINT_CATS)
                elif roll < 0.72:
                    rtype, cat = "REPORT", rnd.choice(REPORT_CATS)
                elif roll < 0.82:
                    rtype = "HELP"
                    text, cat, urg = rnd.choice(HELP)
                    self.ticket(self.at_on(day), rtype, text.format(b=b), caller,
                                code, self.address(code, b), cat, urgency=urg)
                    continue
                elif roll < 0.92:
                    text, cat = rnd.choice(CONSULT)
                    self.ticket(self.at_on(day, 8, 20), "CONSULT", text, caller, code,
                                self.address(code), cat)
                    continue
                else:
                    text, cat = rnd.choice(SUGGEST)
                    self.ticket(self.at_on(day, 8, 20), "SUGGEST", text, caller, code,
                                self.address(code), cat)
                    continue
                anon = rtype == "REPORT" and rnd.random() < 0.25  # anonymous reports
                urg = 1 if cat in ("V_HAZMAT", "V_FIRE_LANE") and rnd.random() < 0.3 else 0
                self.ticket(self.at_on(day), rtype, self.content(cat, b), None if anon else caller,
                            code, self.address(code, b), cat, hotline=self.hotline_code(cat),
                            urgency=urg)

    def repeats(self):
        """Callers who call again about the same thing (R-I5), and near misses."""
        rnd = self.rnd
        base = [t for t in self.tickets if t["request_type"] in ("COMPLAINT", "REPORT")
                and t["caller_phone"] and t["_at"].day <= 24]
        rnd.shuffle(base)
        caller_of = {c["phone"]: c for c in self.callers}
        for i, t in enumerate(base[:14]):
            caller = caller_of[t["caller_phone"]]
            code = caller["compound"]
            if i < 10:   # within 7 days: a repeat
                later = t["_at"] + dt.timedelta(days=rnd.randint(1, 6), hours=rnd.randint(0, 5))
                text = "再次反映：" + self.content(t["_cat"])
            elif i < 12:  # eight days later: a new ticket
                later = t["_at"] + dt.timedelta(days=8, hours=rnd.randint(1, 5))
                text = "问题仍未解决：" + self.content(t["_cat"])
            else:         # within 7 days but about something else
                later = t["_at"] + dt.timedelta(days=2, hours=3)
                other = "V_NOISE" if t["_cat"] != "V_NOISE" else "PS_ORDER"
                self.ticket(later, "COMPLAINT", self.content(other), caller, code,
                            self.address(code), other)
                continue
            if later.hour >= 23 or later.hour < 7:
                later = later.replace(hour=rnd.randint(8, 20))
            if later.date() >= START + dt.timedelta(days=DAYS):
                continue  # after October: not in this feed
            self.ticket(later, t["request_type"], text, caller, code, self.address(code),
                        t["_cat"], hotline=t["hotline_category"])

    def triage_cases(self):
        """Addresses without a known compound, an ambiguous one, unclassifiable content."""
        rnd = self.rnd
        days = rnd.sample(range(DAYS), 9)
        for k, day in enumerate(days[:5]):
            cat = rnd.choice(["V_NOISE", "V_GARBAGE", "PS_SANITATION", "V_FIRE_LANE"])
            caller = rnd.choice(self.callers)
            self.ticket(self.at_on(day), "COMPLAINT", self.content(cat), caller, None,
                        UNMATCHED[k], cat, _triage=caller["compound"] if k < 4 else None)
        caller = rnd.choice(self.callers)
        self.ticket(self.at_on(days[5]), "COMPLAINT", self.content("PS_ORDER"), caller, None,
                    AMBIGUOUS, "PS_ORDER", _triage="C0003")
        for k, day in enumerate(days[6:9]):
            caller = rnd.choice(self.callers)
            rtype = "CONSULT" if "咨询" in UNCLASSIFIED[k] else "COMPLAINT"
            code = caller["compound"]
            self.ticket(self.at_on(day), rtype, UNCLASSIFIED[k], caller, code,
                        self.address(code), "OTHER",
                        _triage_cat="PS_FACILITY" if k != 1 else None)
        self.ticket(self.at_on(days[0]), "CONSULT", UNCLASSIFIED[3], rnd.choice(self.callers),
                    None, "电话中未说明小区", "OTHER")

    def number(self):
        self.tickets.sort(key=lambda t: t["_at"])
        seq = {}
        for t in self.tickets:
            d = t["_at"].strftime("%Y%m%d")
            seq[d] = seq.get(d, 0) + 1
            t["ticket_no"] = f"12345-{d}-{seq[d]:06d}"

    def emit(self, at, obj):
        self.lines.append((at, len(self.lines), obj))

    def public(self, t):
        out = {"type": "ticket", "at": iso(t["_at"])}
        for k, v in t.items():
            if not k.startswith("_") and k != "type":
                out[k] = v
        return out

    def follow_ups(self, decided):
        """Callbacks, operator triage and exemptions, after the tickets they concern."""
        rnd = self.rnd
        end = dt.datetime(2026, 10, 31, 22, 0, tzinfo=TZ)
        dispatched = [t for t in self.tickets if decided[t["ticket_no"]]["disposition"] == "DISPATCHED"]
        for t in rnd.sample(dispatched, 45):
            at = t["_at"] + dt.timedelta(days=rnd.randint(3, 10), hours=rnd.randint(0, 6))
            if at < end:
                at = at.replace(hour=rnd.randint(9, 17))
                self.emit(at, {"type": "feedback", "at": iso(at), "ticket_no": t["ticket_no"],
                               "satisfaction": rnd.choice(SATISFACTION)})
        for t in self.tickets:
            if decided[t["ticket_no"]]["disposition"] != "TRIAGE":
                continue
            comp, cat = t.get("_triage"), t.get("_triage_cat")
            if not comp and not cat:
                continue  # left waiting in the triage queue
            at = t["_at"] + dt.timedelta(minutes=rnd.randint(30, 240))
            self.emit(at, {"type": "triage", "at": iso(at), "ticket_no": t["ticket_no"],
                           "compound_code": comp or "",
                           "category": cat or "", "unit": ""})
        complaints = [t for t in dispatched if t["request_type"] == "COMPLAINT"
                      and t["_cat"].startswith("PS_") and t["_at"].day < 25]
        for k, t in enumerate(rnd.sample(complaints, 3)):
            at = t["_at"] + dt.timedelta(days=rnd.randint(2, 5))
            at = at.replace(hour=15, minute=30, second=0)
            self.emit(at, {"type": "exempt", "at": iso(at), "ticket_no": t["ticket_no"],
                           "reason": EXEMPT_REASONS[k]})
        noise = next(t for t in dispatched if t["_cat"] == "V_NOISE" and t["_at"].day < 28)
        a1 = noise["_at"] + dt.timedelta(hours=2)
        a2 = noise["_at"] + dt.timedelta(days=1, hours=3)
        self.emit(a1, {"type": "update", "at": iso(a1), "ticket_no": noise["ticket_no"], "step": 1,
                       "unit": "GA", "action": "ACCEPT"})
        self.emit(a2, {"type": "update", "at": iso(a2), "ticket_no": noise["ticket_no"], "step": 1,
                       "unit": "GA", "action": "RESOLVE", "violation_confirmed": True,
                       "note": "民警到场劝导，噪音已停止"})

    def oddities(self):
        """What a real feed also carries: a hotline resend, and input intake refuses."""
        rnd = self.rnd
        t = self.tickets[40]                      # resent as is: DUPLICATE
        self.emit(t["_at"], self.public(t))
        t2 = self.tickets[120]                    # same number, other content: REJECTED
        edited = self.public(t2)
        edited["content"] += "（补充：已多次反映）"
        self.emit(t2["_at"], edited)
        caller = rnd.choice(self.callers)
        at = self.at_on(17)
        self.emit(at, {"type": "ticket", "at": iso(at), "ticket_no": "12345-20261018-900001",
                       "request_type": "COMPLAINT", "hotline_category": "",
                       "caller_phone": caller["phone"], "caller_name": caller["name"],
                       "compound_code": "", "address": "",
                       "content": "来电人未说明地址，反映楼上噪音扰民"})   # REJECTED (R-I8)
        at = self.at_on(2, 10, 11)
        self.emit(at, {"type": "feedback", "at": iso(at), "ticket_no": "12345-20260921-000007",
                       "satisfaction": "SATISFIED"})  # a September ticket: unknown here

    def decide(self):
        """What intake should decide for each ticket (R-I3, R-I4, R-I5)."""
        out, window = {}, dt.timedelta(days=7)
        for t in self.tickets:  # sorted by time
            cat = self.reg.classify(t["hotline_category"], t["content"])
            comp = self.reg.match(t["compound_code"], t["address"])
            assert cat == t["_cat"], (t["content"], cat, t["_cat"])
            disp, rep = "DISPATCHED", None
            if not comp or cat == "OTHER":
                disp = "TRIAGE"
            elif t["request_type"] in ("CONSULT", "SUGGEST"):
                disp = "RECORDED"
            elif t["request_type"] in ("COMPLAINT", "REPORT") and t["caller_phone"]:
                for e in reversed([e for e in out.values() if e["_at"] >= t["_at"] - window]):
                    if (e["phone"] == t["caller_phone"] and e["compound"] == comp
                            and e["category"] == cat and e["disposition"] == "DISPATCHED"
                            and e["request_type"] in ("COMPLAINT", "REPORT")):
                        disp, rep = "REPEAT", e["ticket_no"]
                        break
            out[t["ticket_no"]] = {"ticket_no": t["ticket_no"], "category": cat,
                                   "compound": comp, "disposition": disp, "repeat_of": rep,
                                   "_at": t["_at"], "phone": t["caller_phone"],
                                   "request_type": t["request_type"]}
        return out

    def run(self):
        self.daily()
        self.repeats()
        self.triage_cases()
        self.number()
        decided = self.decide()
        for t in self.tickets:
            self.emit(t["_at"], self.public(t))
        self.follow_ups(decided)
        self.oddities()
        for day in range(1, DAYS + 1):  # the end of each day
            at = dt.datetime.combine(START + dt.timedelta(days=day), dt.time(0), TZ)
            self.emit(at, {"type": "watermark", "at": iso(at)})
        self.lines.sort(key=lambda x: (x[0], x[2]["type"] == "watermark", x[1]))
        # A watermark sorts after everything before its time; the last line is the
        # watermark that closes October.
        assert self.lines[-1][2] == {"type": "watermark", "at": "2026-11-01T00:00:00+08:00"}
        return decided


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(ROOT, "deploy", "feed", "sample.jsonl"),
                    help="feed file to write ('-' for stdout)")
    ap.add_argument("--expect", help="also write intake's expected decisions (JSON Lines)")
    a = ap.parse_args()
    g = Gen(Registry())
    decided = g.run()
    text = "".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for _, _, o in g.lines)
    if a.output == "-":
        sys.stdout.write(text)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)
    if a.expect:
        with open(a.expect, "w", encoding="utf-8") as f:
            for d in decided.values():
                f.write(json.dumps({k: v for k, v in d.items() if k in
                                    ("ticket_no", "category", "compound", "disposition",
                                     "repeat_of")}, ensure_ascii=False) + "\n")
    kinds, disp = {}, {}
    for _, _, o in g.lines:
        kinds[o["type"]] = kinds.get(o["type"], 0) + 1
    for d in decided.values():
        disp[d["disposition"]] = disp.get(d["disposition"], 0) + 1
    print(f"gen_feed: {len(g.lines)} lines: " +
          ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) +
          "; tickets expected: " + ", ".join(f"{v} {k}" for k, v in sorted(disp.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
