"""tools/gen_city_model.py: the city side of tools/gen_city.py: names and texts,
time helpers, the working-day calendar, intake's compound matching as the
generator models it, and the City (districts, streets, compounds, companies,
managers) with its registry files. Python 3 standard library only."""
import csv
import datetime as dt
import os
import shutil

import gen_feed  # noqa: E402 (tools/, the script's own directory)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASE = os.path.join(ROOT, "deploy", "registry")
TZ = dt.timezone(dt.timedelta(hours=8))
HOUR = 3600
DAY = 86400

# ---- names ---------------------------------------------------------------------

DISTRICTS = [("D01", "和平区"), ("D02", "新华区"), ("D03", "东湖区"), ("D04", "西山区"),
             ("D05", "高新区")]
STREETS = {
    "D01": ["和平街道", "光明街道", "解放街道", "人民街道", "胜利街道", "文化街道", "东风街道",
            "红旗街道", "柳林镇"],
    "D02": ["新华街道", "长青镇", "中山街道", "建设街道", "北关街道", "南关街道", "站前街道",
            "工农街道", "石桥镇"],
    "D03": ["湖滨街道", "东关街道", "城东街道", "朝阳街道", "向阳街道", "望江街道", "滨河街道",
            "桥东街道", "双河镇"],
    "D04": ["西关街道", "城西街道", "龙山街道", "凤凰街道", "白云街道", "青年街道", "桥西街道",
            "马家镇", "三里镇"],
    "D05": ["科技园街道", "新城街道", "金水街道", "黄河街道", "长江街道", "开发区街道",
            "杨庄镇", "七里河镇"],
}
STEMS = ("阳光 幸福 锦绣 翠湖 滨江 金桂 银杏 紫荆 丽景 碧水 蓝天 春晖 和谐 康乐 富华 东方 "
         "西城 南湖 北辰 明珠 金色 锦华 盛世 天骄 名门 书香 枫林 梧桐 桃源 杏林 博雅 瑞景 "
         "嘉禾 泰和 福星 吉祥 鑫源 龙湖 凤凰 青松 翠竹 玉兰 海棠 芙蓉 牡丹 百合 荷塘 柳岸 "
         "月湖 星河 银河 天河 江南 水岸 湖畔 山水 云山 锦江 清水 绿洲 香榭 怡景 雅园 静安 "
         "安康 康居 宜居 乐居 和美 美林 华府 世纪 时代 新世纪 金域 御景 铂悦 观澜 揽月 "
         "听涛 逸景 颐和 雍景 君悦 尚品 悦府 万和 万福 永安 永兴 长乐 长安 兴隆 兴旺 "
         "丰泽 丰盛 汇景 汇丰 华苑 华城 新苑 新天地 恒盛 恒泰 宏运 宏图 振兴 胜利 "
         "团结 红星 光华 金水 银湖 碧桂 翡翠 琥珀 水晶 钻石 金鼎 御河 秀水 秀峰 城南 "
         "城北 城东 城西 东湖 西湖 北湖 南山 北山 东山 西山 清河 白鹭 黄鹂 紫薇 丁香 "
         "樱花 桂花 荷花 梅园 兰亭 竹苑 松涛 柏林 橡树 枫叶 晨曦 朝阳 夕阳 晴川 瑞和").split()
SUFFIXES = ["小区", "花园", "苑", "家园", "华庭", "名苑", "新村", "公寓", "雅居", "嘉园", "湾",
            "府", "里", "佳苑", "世家", "丽都", "山庄", "雅苑", "名邸", "新城"]
PHASES = ["二期", "三期", "东区", "西区", "南区", "北区"]
UNITS_OLD = ("钢厂 粮站 纺织厂 机械厂 化肥厂 供销社 电业局 水泥厂 棉纺厂 百货公司 第一中学 "
             "第二中学 人民医院 交通局 税务局 邮电局 建筑公司 食品公司 农机厂 酒厂 印刷厂 "
             "木材公司 物资局 煤建公司 造纸厂 糖厂 汽修厂 运输公司 火柴厂 玻璃厂 铸造厂 "
             "制药厂 皮革厂 服装厂 化工厂 电机厂 轴承厂 油脂厂 面粉厂 肉联厂 自来水公司 "
             "燃气公司 公交公司 粮食局 卫生局 教育局 师范学校 卫校 林业局 水利局").split()
ROADS = ("和平路 解放路 人民路 建设路 胜利街 文化路 新华路 中山路 青年路 东风路 工农路 "
         "红旗路 朝阳路 向阳路 光明路 长江路 黄河路 泰山路 华山路 北京路 上海路 南京路 "
         "迎宾路 站前路 滨河路 学院路 育才路 健康路 幸福路 友谊路").split()
BRAND1 = "安锦宏新恒华金银嘉泰鑫盛达鼎瑞祥和顺德信诚康福万中天海龙远佳利美宝通辉荣昌兴丰"
BRAND2 = "安锦宏新恒华金银嘉泰鑫盛达鼎瑞祥和顺德信诚康福万中天海龙远佳利美宝通辉荣昌兴丰程"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
         "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "玉兰", "国强", "海燕",
         "志强", "建国", "淑珍", "红", "丹", "鹏", "辉", "浩", "宇", "欣", "晨", "雪", "婷"]

# Hotline category codes beyond the base map (R-I3), one per category at most.
EXTRA_HOTLINE = [("1107", "PS_ATTITUDE"), ("1108", "PS_DISCLOSURE"), ("1109", "PS_PRIVACY"),
                 ("1110", "PS_COERCION"), ("1203", "V_GREEN_OCCUPY"), ("1204", "V_RENOVATION"),
                 ("1302", "V_PETS"), ("1403", "V_HAZMAT"), ("1601", "V_MAINT_FUND"),
                 ("1602", "V_OWNERS_COMMITTEE"), ("1603", "V_CHARGING_BLOCK")]
# Days off and make-up days the base calendar may lack (2027 New Year's Day).
EXTRA_CALENDAR = [("2027-01-01", "HOLIDAY")]

# ---- texts: each template is classified by its keywords (R-I3) --------------------

TEMPLATES = {
    "PS_SANITATION": ["{b}号楼楼道杂物无人清理，已经一个多月了", "小区垃圾清运不及时，垃圾桶周边臭气熏天",
                      "小区主干道无人清扫，落叶和烟头随处可见", "小区环境脏乱，物业保洁人员长期不到岗",
                      "{b}号楼门前卫生差，污水横流", "地下车库无人清扫，灰尘很厚"],
    "PS_GREENING": ["小区绿地无人养护，杂草长到半人高", "中心花园草坪枯死，物业一直不补种",
                    "{b}号楼前树木修剪不及时，树枝挡住窗户", "小区绿地无人养护，枯枝一直没人清理"],
    "PS_ORDER": ["小区外来车辆随意进出，停车秩序混乱", "小区门禁形同虚设，陌生人随意进出",
                 "地库乱停车严重，车辆无法正常通行", "{b}号楼前乱停车，救护车都进不来"],
    "PS_FACILITY": ["{b}号楼单元门损坏两周无人维修", "小区路灯不亮，晚上出行不安全",
                    "{b}号楼顶层屋顶渗水，物业推诿不修", "小区监控损坏，自行车被盗也查不到",
                    "地下室管道堵塞，污水漫到车位", "{b}号楼楼顶漏水，报修多次没人来"],
    "PS_ATTITUDE": ["物业客服态度恶劣，报修电话打了多次没人管", "物业保安辱骂业主，要求物业公司道歉",
                    "物业工作人员服务态度差，推诿扯皮", "物业保安未穿工装，看不出是不是物业人员"],
    "PS_FEES": ["物业费上涨未经业主大会表决", "物业乱收费，装修押金迟迟不退",
                "小区停车费擅自涨价，收费不公示", "物业擅自涨价，每平方米多收五角"],
    "PS_DISCLOSURE": ["物业公共收益去向不明，账目不公开", "电梯广告收入从未向业主公示",
                      "物业拒不落实六公开制度", "小区公共收益多年没有公布"],
    "PS_PRIVACY": ["物业泄露业主信息，天天接到推销电话", "本人信息被泄露，怀疑物业把业主名单卖给中介",
                   "物业在群里泄露个人信息"],
    "PS_SERVICE_STOP": ["物业跑路，小区无人管理，垃圾堆积", "物业公司突然终止服务，电梯无人维保",
                        "原物业合同到期拒不交接，新物业无法进场", "物业撤离后小区没人管"],
    "PS_COERCION": ["物业以催缴物业费为由停水停电", "物业限卡，不交物业费就不给电卡充值",
                    "物业把欠费业主的门禁卡停用", "物业断水断电逼业主交费"],
    "V_ILLEGAL_BUILD": ["{b}号楼顶楼加盖彩钢房", "一楼业主在院子里私搭乱建",
                        "邻居在露台搭建阳光房，影响采光", "{b}号楼有违章建筑正在施工"],
    "V_GREEN_OCCUPY": ["有业主毁绿种菜，公共绿地被圈占", "业主在楼前绿地种菜并施农家肥",
                       "物业私自砍伐树木", "{b}号楼前公共绿地被占绿建车棚"],
    "V_RENOVATION": ["楼上装修拆除承重墙，楼体安全堪忧", "{b}号楼有住户砸墙改结构",
                     "楼下违规装修，把阳台改成厨房"],
    "V_NOISE": ["小区夜间施工，凌晨两点还在施工", "楼下广场舞音响太大，晚上十点还不停",
                "楼上住户长期噪音扰民", "小区门口商铺噪音很大"],
    "V_FIRE_LANE": ["小区消防通道被私家车长期占用", "{b}号楼安全出口被锁死",
                    "楼道堆物严重，堵塞通道", "{b}号楼前消防通道被杂物堵住"],
    "V_EBIKE": ["有住户电动车上楼在家充电", "{b}号楼有人从窗户飞线充电",
                "住户在楼道充电，存在火灾隐患", "有人把电瓶车进电梯推回家"],
    "V_PETS": ["小区遛狗不拴绳，孩子被吓哭", "楼顶有人养鸽子，粪便污染严重",
               "小区犬只伤人，物业不管", "{b}号楼有住户在阳台饲养家禽"],
    "V_HAZMAT": ["一楼门面房内存放多个液化气罐", "车库里有人囤积汽油", "地下室有人存放煤气罐"],
    "V_ELEVATOR": ["{b}号楼电梯困人，半小时没人来救", "{b}号楼电梯故障频繁，老人上下楼困难",
                   "{b}号楼电梯异响，乘坐很害怕", "{b}号楼电梯停运一周"],
    "V_GARBAGE": ["有人在小区空地乱倒垃圾", "装修建筑垃圾堆在楼下无人清运", "小区垃圾未分类，混装混运"],
    "V_MAINT_FUND": ["物业擅自动用维修资金，业主不知情", "维修基金使用情况从不说明"],
    "V_OWNERS_COMMITTEE": ["业委会成员私自与物业签订合同", "业主委员会换届选举程序违规"],
    "V_CHARGING_BLOCK": ["物业阻挠安装充电桩", "物业不让5G基站进小区", "宽带入户被物业收取进场费"],
}
OPENERS = ["", "", "", "市民来电反映：", "来电人反映，", "您好，", "业主反映："]
CLOSERS = ["", "。", "，希望尽快处理。", "，多次反映无果。", "，影响居民正常生活。",
           "，请相关部门核实处理。", "，老人孩子出行不便。"]
CONSULT = [("咨询物业费上涨需要走什么程序", "PS_FEES"), ("咨询维修基金如何申请使用", "V_MAINT_FUND"),
           ("咨询业主委员会如何成立", "V_OWNERS_COMMITTEE"), ("咨询小区充电桩安装流程", "V_CHARGING_BLOCK"),
           ("咨询垃圾分类投放时间", "V_GARBAGE"), ("咨询停车费收费标准", "PS_FEES")]
HELP = [("{b}号楼电梯困人，请求救援", "V_ELEVATOR"), ("家里漏水，楼上无人，请求帮助联系物业", "PS_FACILITY"),
        ("下水管道堵塞，污水倒灌，请求帮助", "PS_FACILITY"),
        ("物业以欠费为由停水停电，家中老人无法生活", "PS_COERCION")]
UNCLASSIFIED = ["小区地下车库积水严重，车辆无法通行", "小区门口公交站牌被撞坏",
                "小区内道路坑洼不平，老人容易摔倒", "小区旁边的河道有异味"]
UNMATCHED = ["{r}{n}号附近", "{r}与{r2}交叉口", "{r}{n}号门面房", "城南批发市场东门", "{r}公交站旁边"]
HOT_CATS = (["PS_SANITATION"] * 5 + ["PS_ORDER"] * 4 + ["PS_FACILITY"] * 5 + ["PS_ATTITUDE"] * 3 +
            ["PS_FEES"] * 3 + ["PS_GREENING"] * 2 + ["PS_DISCLOSURE"])
# The category whose confirmed violation evidences each prohibition (R-P1, R-P2).
PROHIBITION_CAT = {"P1": "V_ILLEGAL_BUILD", "P2": "PS_SANITATION", "P3": "PS_ATTITUDE",
                   "P4": "V_CHARGING_BLOCK", "P5": "PS_PRIVACY", "P6": "PS_SERVICE_STOP",
                   "P7": "PS_FEES", "P8": "PS_DISCLOSURE", "P9": "PS_COERCION"}
RETURN_REASONS = ["经核实不属于本单位职责范围，请重新派单", "该事项属于其他部门职责，建议改派",
                  "工单地址与实际不符，本单位无法处置", "涉及多部门职责，请协调相关单位办理"]
RESOLVE_NOTES = ["已现场核查并督促整改到位", "已约谈物业负责人，问题已整改", "经现场核实，已处理完毕",
                 "已联系来电人说明情况并处理", "已责令限期整改，复查合格"]
VIOLATION_NOTES = {"P1": "经核查系物业擅自搭建，已责令拆除", "P2": "垃圾分类设施缺失、转运车辆未密闭，情况属实",
                   "P3": "物业工作人员未按规定着装上岗，情况属实", "P4": "物业阻碍充电设施建设，情况属实",
                   "P5": "物业泄露业主个人信息，情况属实", "P6": "物业擅自终止服务、拒不交接，情况属实",
                   "P7": "物业擅自涨价、违规收费，情况属实", "P8": "物业擅自使用公共收益，情况属实",
                   "P9": "物业以停水停电方式催缴费用，情况属实"}
EXEMPT_REASONS = ["经核实为业主之间的邻里纠纷，不属物业服务范畴", "来电人反映问题与事实不符，经街道核查不予计入",
                  "同一问题已由其他渠道办结，核减不计", "系恶意投诉，经核实不予计入"]
SATISFACTION_OK = ["SATISFIED"] * 7 + ["BASICALLY_SATISFIED"] * 3


# Intake's text matching and classification, as the small sample's generator models it.
norm = gen_feed.norm
# The categories and texts both generators draw from.
COMPLAINT_CATS, REPORT_CATS = gen_feed.COMPLAINT_CATS, gen_feed.REPORT_CATS
SUGGEST, SURNAMES = gen_feed.SUGGEST, gen_feed.SURNAMES


# ---- time ---------------------------------------------------------------------------


def epoch(d, h=0, m=0, s=0):
    return int(dt.datetime(d.year, d.month, d.day, h, m, s, tzinfo=TZ).timestamp())


def local_date(t):
    return dt.datetime.fromtimestamp(t, TZ).date()


def iso(t):
    return dt.datetime.fromtimestamp(t, TZ).isoformat(timespec="seconds")


class Calendar:
    """R-T4 working days; R-T5 deadlines."""

    def __init__(self, rows):
        self.kind = {dt.date.fromisoformat(d): k for d, k in rows}

    def working(self, day):
        k = self.kind.get(day)
        if k:
            return k == "WORKDAY"
        return day.weekday() < 5

    def workdays_end(self, t, n):
        """23:59:59 local of the n-th working day strictly after t's local date."""
        day = local_date(t)
        while n > 0:
            day += dt.timedelta(days=1)
            if self.working(day):
                n -= 1
        return epoch(day, 23, 59, 59)


# ---- the registry -------------------------------------------------------------------


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Matcher:
    """R-I3 classification and R-I4 compound matching, as intake does them."""

    def __init__(self, keywords, hotline, names):
        self.keywords = [(norm(k), c, int(p)) for k, c, p in keywords]
        self.hotline = dict(hotline)
        self.by_first = {}
        for n, code in names:
            self.by_first.setdefault(n[0], []).append((n, code))

    def classify(self, hotline_code, content):
        return gen_feed.classify(self.hotline, self.keywords, hotline_code, content)

    def match(self, code, address, known):
        if code and code in known:
            return code
        text, best, found = norm(address), 0, set()
        for i, ch in enumerate(text):
            for n, c in self.by_first.get(ch, ()):
                if text.startswith(n, i):
                    if len(n) > best:
                        best, found = len(n), {c}
                    elif len(n) == best:
                        found.add(c)
        return found.pop() if len(found) == 1 else ""


class City:
    def __init__(self, rnd, n_compounds, base):
        self.rnd = rnd
        self.base = base
        self.departments = [(r["code"], r["name"]) for r in read_csv(os.path.join(base, "departments.csv"))]
        self.categories = read_csv(os.path.join(base, "categories.csv"))
        self.cat = {r["category"]: r for r in self.categories}
        self.keywords = [(r["keyword"], r["category"], r["priority"])
                         for r in read_csv(os.path.join(base, "keywords.csv"))]
        self.routing_rows = read_csv(os.path.join(base, "routing.csv"))
        self.routes = {}
        for r in self.routing_rows:
            self.routes.setdefault(r["category"], []).append(
                (int(r["step"]), r["unit"], int(r["accept_hours"]), int(r["resolve_workdays"])))
        for v in self.routes.values():
            v.sort()
        self.hotline = [(r["hotline_code"], r["category"])
                        for r in read_csv(os.path.join(base, "hotline_categories.csv"))]
        have = {c for _, c in self.hotline}
        codes = {h for h, _ in self.hotline}
        for h, c in EXTRA_HOTLINE:
            if c not in have and h not in codes and c in self.cat:
                self.hotline.append((h, c))
        self.hotline_of = {}
        for h, c in self.hotline:
            self.hotline_of.setdefault(c, h)
        cal = [(r["date"], r["kind"]) for r in read_csv(os.path.join(base, "calendar.csv"))]
        days = {d for d, _ in cal}
        cal += [(d, k) for d, k in EXTRA_CALENDAR if d not in days]
        self.calendar_rows = sorted(cal)
        self.calendar = Calendar(self.calendar_rows)
        self.make_streets()
        self.make_compounds(n_compounds)
        self.make_companies(max(4, n_compounds // 10))
        names = []
        for c in self.compounds:
            for n in [c["name"]] + c["aliases"]:
                names.append((norm(n), c["code"]))
        self.matcher = Matcher(self.keywords, self.hotline, names)
        self.by_code = {c["code"]: c for c in self.compounds}

    def make_streets(self):
        self.districts = DISTRICTS
        self.district_name = dict(DISTRICTS)
        self.streets = []
        for d, _ in DISTRICTS:
            for k, name in enumerate(STREETS[d], 1):
                self.streets.append({"code": f"S{d[1:]}{k:02d}", "name": name, "district": d,
                                     "rural": name.endswith("镇")})
        self.street = {s["code"]: s for s in self.streets}

    def person(self):
        return self.rnd.choice(SURNAMES) + self.rnd.choice(GIVEN)

    def make_compounds(self, n):
        rnd, taken = self.rnd, set()
        self.compounds = []
        weights = [0.4 if s["rural"] else 1.0 + (0.6 if s["district"] in ("D01", "D02") else 0)
                   for s in self.streets]

        def free(*names):
            return all(norm(x) not in taken for x in names)

        for i in range(1, n + 1):
            st = rnd.choices(self.streets, weights)[0]
            roll = rnd.random()
            mgmt = ("PROFESSIONAL" if roll < 0.62 else "SELF" if roll < 0.72 else
                    "CUSTODIAL" if roll < 0.85 else "NONE")
            modern = mgmt == "PROFESSIONAL" or (mgmt == "SELF" and rnd.random() < 0.5)
            for _ in range(200):
                aliases = []
                if modern:
                    stem, suf = rnd.choice(STEMS), rnd.choice(SUFFIXES)
                    name = stem + suf
                    if not free(name) or rnd.random() < 0.12:
                        ph = rnd.choice(PHASES)
                        name, aliases = name + ph, [stem + ph] if rnd.random() < 0.6 else []
                    if suf != "小区":
                        aliases.append(name + "小区")
                    elif rnd.random() < 0.5:
                        aliases.append(stem + "社区")
                    if suf == "苑" and rnd.random() < 0.5:
                        aliases.append(stem + "园")
                else:
                    kind = rnd.random()
                    if kind < 0.45:
                        u = rnd.choice(UNITS_OLD)
                        name = u + rnd.choice(["宿舍", "家属院", "家属楼", "生活区"])
                        aliases = [u + "宿舍区"] if rnd.random() < 0.5 else []
                        if rnd.random() < 0.3:
                            name = st["name"][:2] + name
                    elif kind < 0.8:
                        r, k = rnd.choice(ROADS), rnd.randint(1, 199)
                        name = f"{r}{k}号院"
                        aliases = [f"{r}{k}号大院"]
                    else:
                        name = rnd.choice(STEMS) + rnd.choice(["新村", "里", "小区", "社区"])
                if free(name, *aliases) and len(set(map(norm, [name] + aliases))) == 1 + len(aliases):
                    break
            else:
                raise SystemExit("gen_city: ran out of compound names")
            for x in [name] + aliases:
                taken.add(norm(x))
            hh = (rnd.randint(300, 3200) if mgmt == "PROFESSIONAL" else rnd.randint(80, 700)
                  if mgmt == "SELF" else rnd.randint(60, 900) if mgmt == "CUSTODIAL"
                  else rnd.randint(24, 320))
            self.compounds.append({"code": f"C{i:04d}", "name": name, "aliases": aliases,
                                   "street": st["code"], "management": mgmt, "company": "",
                                   "manager": "", "households": hh})

    def make_companies(self, n):
        rnd = self.rnd
        brands = [a + b for a in BRAND1 for b in BRAND2 if a != b]
        rnd.shuffle(brands)
        kinds = ["物业服务有限公司"] * 3 + ["物业管理有限公司"] * 2 + ["物业服务集团有限公司"]
        self.companies = []
        for i in range(1, n + 1):
            prefix = rnd.choice(["", "", "", "城投", "市", "新区"]) if i > 4 else ""
            self.companies.append({"code": f"E{i:03d}", "name": prefix + brands[i - 1] + rnd.choice(kinds)})
        prof = [c for c in self.compounds if c["management"] == "PROFESSIONAL"]
        rnd.shuffle(prof)
        weights = [1.0 / (k + 1) ** 0.7 for k in range(n)]
        for k, c in enumerate(prof):
            co = self.companies[k // 2] if k < 2 * n else rnd.choices(self.companies, weights)[0]
            c["company"] = co["code"]
            c["manager"] = self.person()
        self.projects = {}
        for c in self.compounds:
            if c["company"]:
                self.projects.setdefault(c["company"], []).append(c["code"])

    def route(self, category, pos, compound):
        """(unit, accept_hours, resolve_workdays) of routing step pos (R-R1)."""
        _, unit, ah, rw = self.routes[category][pos - 1]
        c = self.by_code[compound]
        if unit == "STREET" or (category.startswith("PS_") and c["management"] != "PROFESSIONAL"):
            unit = c["street"]
        return unit, ah, rw

    def write(self, out):
        os.makedirs(out, exist_ok=True)

        def w(name, header, rows):
            with open(os.path.join(out, name), "w", newline="", encoding="utf-8") as f:
                cw = csv.writer(f, lineterminator="\n")
                cw.writerow(header)
                cw.writerows(rows)
        w("districts.csv", ["code", "name"], self.districts)
        w("streets.csv", ["code", "name", "district"],
          [(s["code"], s["name"], s["district"]) for s in self.streets])
        w("compounds.csv", ["code", "name", "aliases", "street", "management", "company",
                            "manager", "households"],
          [(c["code"], c["name"], "|".join(c["aliases"]), c["street"], c["management"],
            c["company"], c["manager"], c["households"]) for c in self.compounds])
        w("companies.csv", ["code", "name"], [(c["code"], c["name"]) for c in self.companies])
        w("departments.csv", ["code", "name"], self.departments)
        w("calendar.csv", ["date", "kind"], self.calendar_rows)
        w("hotline_categories.csv", ["hotline_code", "category"], self.hotline)
        w("keywords.csv", ["keyword", "category", "priority"], self.keywords)
        w("routing.csv", ["category", "step", "unit", "accept_hours", "resolve_workdays"],
          [(r["category"], r["step"], r["unit"], r["accept_hours"], r["resolve_workdays"])
           for r in self.routing_rows])
        w("categories.csv", ["category", "name", "counts", "urgent", "prohibition"],
          [(r["category"], r["name"], r["counts"], r["urgent"], r["prohibition"])
           for r in self.categories])
        tpl = os.path.join(self.base, "notice_templates")
        if os.path.isdir(tpl):  # escalation's letters (not part of the scenario format)
            dst = os.path.join(out, "notice_templates")
            os.makedirs(dst, exist_ok=True)
            for name in sorted(os.listdir(tpl)):
                shutil.copyfile(os.path.join(tpl, name), os.path.join(dst, name))


# ---- the quarter ---------------------------------------------------------------------
