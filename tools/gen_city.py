#!/usr/bin/python3
"""tools/gen_city.py: generates a sample city (a registry in the registry (docs/formats.md)
format) and a quarter of activity over it (a scenario feed (docs/formats.md), sorted by `at`).
Seeded and deterministic: the same --seed and options give byte-identical output.
Python 3 standard library only.

    /usr/bin/python3 tools/gen_city.py --seed 1 --out DIR [--tickets 6000] [--quarter 2026Q4]

writes DIR/registry/*.csv (districts, streets, compounds, companies, departments,
calendar, hotline_categories, keywords, routing, categories; plus escalation's
notice_templates/ copied from the base registry) and DIR/feed.jsonl; with --expect,
also DIR/expect.jsonl: per ticket what intake and referral should make of it."""
# The city: 5 districts, 44 streets, about 3,000 compounds (小区, 花园, 苑, 家园 ...,
# with aliases such as "…小区" and "…二期" short forms; PROFESSIONAL majority, SELF,
# CUSTODIAL and NONE), about 300 property companies (…物业服务有限公司) managing
# several projects each, a manager per project. Departments, categories, keywords
# and routing are the base registry's (deploy/registry), the hotline category map
# is extended to more categories; the calendar is the base one (2026 official
# arrangement: 国庆/中秋 Oct 1-7 off, Sep 20 and Oct 10 worked) plus 2027-01-01.
#
# The quarter: tickets with a daily and weekly rhythm; keyword-classified texts
# (R-I3) and hotline codes; addresses naming a compound by name or alias, or its
# code (R-I4); unmatched and ambiguous addresses and unclassifiable texts
# completed by operator `triage` lines; repeat calls while the first is open
# (R-I5); CONSULT/SUGGEST (recorded); a few projects complained about heavily for
# one, two or three months running (R-C1..R-C4); confirmed prohibitions so that
# R-P3 fires at D = 1, 2, 3 and 4; unit behaviour (on time, late per R-R4/R-T5,
# silent for a long time, RETURN + operator re-dispatch, R-R3); callbacks with
# UNSATISFIED redo (R-R6) and closing (R-R2); exemptions; inspections (R-S1);
# watermarks every 12 hours of local time, the last one past the quarter's end.
#
# Step numbers in `update` lines are modelled on whistle-referral (R-R2,
# R-R3, R-R6, R-E3a): 1, 2, 3 ... per ticket in issue order; the next routing
# step after a RESOLVE with violation_confirmed; a new number for a re-dispatch
# and for a redo. An operator re-dispatch is a `triage` line with `unit` and the
# returned step's number in `step` (an extra field).
import argparse
import bisect
import csv
import datetime as dt
import json
import os
import random
import shutil
import sys
import time

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
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
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
SUGGEST = [("建议小区增加充电桩", "V_CHARGING_BLOCK"), ("建议物业加强绿化日常管护", "PS_GREENING"),
           ("建议物业定期公开公共收益账目", "PS_DISCLOSURE"), ("建议小区增设门禁，加强外来人员管理", "PS_ORDER")]
HELP = [("{b}号楼电梯困人，请求救援", "V_ELEVATOR"), ("家里漏水，楼上无人，请求帮助联系物业", "PS_FACILITY"),
        ("下水管道堵塞，污水倒灌，请求帮助", "PS_FACILITY"),
        ("物业以欠费为由停水停电，家中老人无法生活", "PS_COERCION")]
UNCLASSIFIED = ["小区地下车库积水严重，车辆无法通行", "小区门口公交站牌被撞坏",
                "小区内道路坑洼不平，老人容易摔倒", "小区旁边的河道有异味"]
UNMATCHED = ["{r}{n}号附近", "{r}与{r2}交叉口", "{r}{n}号门面房", "城南批发市场东门", "{r}公交站旁边"]
COMPLAINT_CATS = (["PS_SANITATION"] * 6 + ["PS_ORDER"] * 5 + ["PS_FACILITY"] * 6 +
                  ["PS_ATTITUDE"] * 3 + ["PS_FEES"] * 4 + ["PS_GREENING"] * 3 +
                  ["PS_DISCLOSURE"] * 2 + ["PS_PRIVACY"] + ["PS_SERVICE_STOP"] +
                  ["PS_COERCION"] + ["V_NOISE"] * 4 + ["V_FIRE_LANE"] * 3 + ["V_EBIKE"] * 3 +
                  ["V_PETS"] * 2 + ["V_GARBAGE"] * 3 + ["V_RENOVATION"] * 2 +
                  ["V_ILLEGAL_BUILD"] * 2 + ["V_GREEN_OCCUPY"] + ["V_ELEVATOR"] * 2 +
                  ["V_CHARGING_BLOCK"] + ["V_OWNERS_COMMITTEE"])
HOT_CATS = (["PS_SANITATION"] * 5 + ["PS_ORDER"] * 4 + ["PS_FACILITY"] * 5 + ["PS_ATTITUDE"] * 3 +
            ["PS_FEES"] * 3 + ["PS_GREENING"] * 2 + ["PS_DISCLOSURE"])
REPORT_CATS = ["V_ILLEGAL_BUILD", "V_HAZMAT", "V_FIRE_LANE", "V_EBIKE", "V_MAINT_FUND",
               "V_RENOVATION", "V_GREEN_OCCUPY", "V_GARBAGE", "PS_PRIVACY"]
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


def quarter_bounds(q):
    y, n = int(q[:4]), int(q[5])
    start = dt.date(y, 3 * n - 2, 1)
    end = dt.date(y + (n == 4), 1 if n == 4 else 3 * n + 1, 1)
    return start, end


class Ticket:
    __slots__ = ("at", "seq", "rtype", "cat", "compound", "phone", "name", "code_given",
                 "address", "content", "hotline", "no", "triage_at", "triage_comp",
                 "triage_cat", "plan", "repeat_of", "disposition", "steps", "state",
                 "first_resolve", "force")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, None)
        for k, v in kw.items():
            setattr(self, k, v)


class Quarter:
    def __init__(self, city, rnd, quarter, n_tickets):
        self.city, self.rnd = city, rnd
        self.q = quarter
        d0, d1 = quarter_bounds(quarter)
        self.start, self.end = epoch(d0), epoch(d1)
        self.days = (d1 - d0).days
        self.d0 = d0
        self.months = [(d0.year, d0.month + k) for k in range(3)]
        self.n = n_tickets
        self.tickets = []
        self.lines = []      # (at, order, obj)
        self.phones = set()
        self.seq = 0
        self.prof = [c for c in city.compounds if c["management"] == "PROFESSIONAL"]
        self.known = city.by_code
        self.insp_seq = 0
        self.unit_badness = {}
        for code, _ in city.departments:
            self.unit_badness[code] = 1.0
        for code in ("CGZF", "ZRZY"):
            self.unit_badness[code] = 2.5
        streets = [s["code"] for s in city.streets]
        for s in rnd.sample(streets, 6):
            self.unit_badness[s] = 3.0

    # -- people and places --
    def phone(self):
        while True:
            p = self.rnd.choice(["138", "139", "135", "137", "150", "158", "186", "187", "133",
                                 "189", "152", "177", "199"]) + f"{self.rnd.randrange(10 ** 8):08d}"
            if p not in self.phones:
                self.phones.add(p)
                return p

    def address(self, code):
        rnd, c = self.rnd, self.known[code]
        for attempt in range(20):
            name = rnd.choice([c["name"]] + c["aliases"])
            prefix = ""
            if rnd.random() < 0.3 and attempt < 10:
                st = self.city.street[c["street"]]
                prefix = self.city.district_name[st["district"]] + st["name"]
            b = rnd.randint(1, 30)
            form = rnd.random()
            if "号院" in name or "院" == name[-1]:
                addr = f"{prefix}{name}{rnd.randint(1, 6)}号楼"
            elif form < 0.55:
                addr = f"{prefix}{name}{b}号楼{rnd.randint(1, 4)}单元{rnd.randint(1, 33)}0{rnd.randint(1, 4)}室"
            elif form < 0.8:
                addr = f"{prefix}{name}{b}栋"
            elif form < 0.9:
                addr = f"{prefix}{name}{rnd.choice(['东门', '西门', '南门', '北门'])}附近"
            else:
                addr = f"{prefix}{name}"
            if self.city.matcher.match("", addr, self.known) == code:
                return addr
        raise SystemExit(f"gen_city: no unambiguous address for {code}")

    def content(self, cat):
        rnd = self.rnd
        text = rnd.choice(TEMPLATES[cat]).format(b=rnd.randint(1, 30))
        return rnd.choice(OPENERS) + text + rnd.choice(CLOSERS)

    def time_on(self, day, lo=7, hi=22):
        """A time on day (index in the quarter) with a daily rhythm."""
        rnd = self.rnd
        h = rnd.choices([7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22],
                        [2, 5, 9, 9, 7, 4, 4, 7, 8, 8, 6, 4, 5, 5, 3, 1])[0]
        h = min(max(h, lo), hi)
        d = self.d0 + dt.timedelta(days=day)
        return epoch(d) + h * HOUR + rnd.randrange(3600)

    def day_weights(self):
        w = []
        for k in range(self.days):
            d = self.d0 + dt.timedelta(days=k)
            x = 1.0 if self.city.calendar.working(d) else 0.7
            if self.city.calendar.kind.get(d) == "HOLIDAY":
                x = 0.55
            if d.weekday() == 0:
                x *= 1.15  # Mondays are busy
            w.append(x)
        return w

    def add(self, at, rtype, cat, compound, **kw):
        anonymous = kw.pop("anonymous", False)
        t = Ticket(at=at, seq=len(self.tickets), rtype=rtype, cat=cat, compound=compound,
                   plan=None, steps=[], hotline="", code_given="", force=False)
        for k, v in kw.items():
            setattr(t, k, v)
        if t.phone is None and not anonymous:
            t.phone, t.name = self.phone(), self.city.person()
        if t.content is None:
            t.content = self.content(cat)
        if t.address is None:
            if self.rnd.random() < 0.12:
                t.code_given = compound
                t.address = f"{self.rnd.randint(1, 30)}号楼{self.rnd.randint(1, 4)}单元"
            else:
                t.address = self.address(compound)
        if not kw.get("hotline") and cat in self.city.hotline_of and self.rnd.random() < 0.3 \
                and rtype in ("COMPLAINT", "REPORT"):
            t.hotline = self.city.hotline_of[cat]
        self.tickets.append(t)
        return t

    # -- tickets --
    def background(self, n):
        rnd = self.rnd
        dw = self.day_weights()
        weights = [c["households"] * (1.3 if c["management"] == "PROFESSIONAL" else 1.0)
                   for c in self.city.compounds]
        cum, acc = [], 0.0
        for x in weights:
            acc += x
            cum.append(acc)

        def compound():
            return self.city.compounds[bisect.bisect(cum, rnd.random() * acc)]["code"]
        days = rnd.choices(range(self.days), dw, k=n)
        for day in days:
            at = self.time_on(day)
            code = compound()
            roll = rnd.random()
            if roll < 0.56:
                self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code)
            elif roll < 0.68:
                cat = rnd.choice(REPORT_CATS)
                self.add(at, "REPORT", cat, code, anonymous=rnd.random() < 0.25)
            elif roll < 0.78:
                text, cat = rnd.choice(HELP)
                self.add(at, "HELP", cat, code, content=text.format(b=rnd.randint(1, 30)))
            elif roll < 0.87:
                text, cat = rnd.choice(CONSULT)
                self.add(at, "CONSULT", cat, code, content=text)
            elif roll < 0.92:
                text, cat = rnd.choice(SUGGEST)
                self.add(at, "SUGGEST", cat, code, content=text)
            elif roll < 0.955:  # an address naming no compound: triage, completed later
                cat = rnd.choice(COMPLAINT_CATS)
                r, r2 = rnd.sample(ROADS, 2)
                addr = rnd.choice(UNMATCHED).format(r=r, r2=r2, n=rnd.randint(200, 999))
                t = self.add(at, "COMPLAINT", cat, code, address=addr)
                t.triage_comp = code
            elif roll < 0.975:  # no keyword: category OTHER, triage names one
                t = self.add(at, "COMPLAINT", "OTHER", code, content=rnd.choice(UNCLASSIFIED))
                t.triage_cat = rnd.choice(["PS_FACILITY", "PS_SANITATION", "V_GARBAGE"])
            elif roll < 0.985:  # two compounds named alike: ambiguous
                other = compound()
                a, b = self.known[code], self.known[other]
                if len(a["name"]) != len(b["name"]) or a == b:
                    self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code)
                    continue
                t = self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code,
                             address=f"{a['name']}与{b['name']}之间的道路")
                t.triage_comp = code
            else:
                cat = rnd.choice(COMPLAINT_CATS)
                self.add(at, "COMPLAINT", cat, code)

    def month_days(self, k):
        y, m = self.months[k]
        d = dt.date(y, m, 1)
        e = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1)
        first = (d - self.d0).days
        return list(range(first, first + (e - d).days))

    def hot(self):
        """Projects complained about heavily: months running (R-C1..R-C4)."""
        rnd = self.rnd
        big = sorted(self.prof, key=lambda c: (-c["households"], c["code"]))[:200]
        companies = sorted({c["company"] for c in big})
        self.bad_companies = rnd.sample(companies, 4)
        pool = [c for c in big if c["company"] in self.bad_companies]
        rest = [c for c in big if c["company"] not in self.bad_companies]
        rnd.shuffle(pool)
        rnd.shuffle(rest)
        scale = self.n / 6000
        plan = []  # (compound, months, per month)
        for c in (pool + rest)[:8]:
            plan.append((c["code"], [0, 1, 2], max(3, round(rnd.randint(14, 20) * scale))))
        for c in rest[8:14]:
            plan.append((c["code"], rnd.choice([[0, 1], [1, 2]]), max(3, round(rnd.randint(8, 12) * scale))))
        for c in rest[14:20]:
            plan.append((c["code"], [rnd.randrange(3)], max(3, round(rnd.randint(8, 12) * scale))))
        # Each month some more projects with a few complaints above the rest,
        # so that the list's boundary (K = 30) falls on a count few projects tie at.
        others = [c for c in self.prof if c["code"] not in {p[0] for p in plan}]
        for k in range(3):
            for c in rnd.sample(others, 30):
                plan.append((c["code"], [k], max(1, round(rnd.randint(2, 7) * scale))))
        self.hot_projects = [p[0] for p in plan[:20]]
        for code, months, per in plan:
            for k in months:
                days = self.month_days(k)
                for _ in range(per):
                    at = self.time_on(rnd.choice(days))
                    self.add(at, "COMPLAINT", rnd.choice(HOT_CATS), code)

    def violations(self):
        """Confirmed prohibitions (R-P2) so that R-P3 fires at D = 1, 2, 3 and 4."""
        rnd = self.rnd
        plans = []
        projs = {co: [p for p in self.city.projects[co]] for co in self.bad_companies}
        a, b, c, d = self.bad_companies
        pa, pb, pc = sorted(projs[a]), sorted(projs[b]), sorted(projs[c])
        plans.append((pa[0], ["P7", "P2", "P3", "P9"]))  # D = 4: the company's blacklist
        if len(pa) > 1:
            plans.append((pa[1], ["P7", "P8"]))
        plans.append((pb[0], ["P2", "P7", "P6"]))        # D = 3: noncompliant, evicted
        if len(pb) > 1:
            plans.append((pb[1], ["P3", "P3"]))          # the same one twice: D stays 1
        plans.append((pc[0], ["P5", "P9"]))              # D = 2: a star down
        if len(pc) > 1:
            plans.append((pc[1], ["P1"]))                # an illegal building's chain
        plans.append((sorted(projs[d])[0], ["P4"]))
        others = [p for p in self.prof if p["company"] not in self.bad_companies]
        for p in rnd.sample(others, 6):
            plans.append((p["code"], [rnd.choice(["P2", "P3", "P7", "P8"])]))
        self.violation_plans = plans
        span = self.days - 12
        for code, ps in plans:
            days = sorted(rnd.sample(range(1, span), len(ps)))
            for day, p in zip(days, ps):
                cat = PROHIBITION_CAT[p]
                t = self.add(self.time_on(day, 8, 18), "COMPLAINT", cat, code)
                t.plan, t.force = p, True

    def repeats(self):
        """Callers who call again about the same matter while it is open (R-I5)."""
        rnd = self.rnd
        cands = [t for t in self.tickets if t.disposition == "DISPATCHED" and t.phone
                 and t.rtype in ("COMPLAINT", "REPORT") and t.triage_at is None]
        rnd.shuffle(cands)
        want = max(3, self.n // 40)
        made = []
        for e in cands:
            if len(made) >= want:
                break
            hi = min(e.at + 7 * DAY - HOUR, (e.first_resolve or self.end) - HOUR, self.end - 2 * HOUR)
            lo = e.at + 2 * HOUR
            if hi - lo < HOUR:
                continue
            at = rnd.randint(lo, hi)
            t = self.add(at, e.rtype, e.cat, e.compound, phone=e.phone, name=e.name,
                         content=rnd.choice(["再次反映：", "又来电反映：", "仍未解决："]) + self.content(e.cat),
                         hotline=e.hotline)
            t.repeat_of, t.disposition, t.state = e, "REPEAT", "REPEAT"
            made.append(t)
        return made

    def number(self):
        self.tickets.sort(key=lambda t: (t.at, t.seq))
        seq = {}
        for t in self.tickets:
            d = local_date(t.at).strftime("%Y%m%d")
            seq[d] = seq.get(d, 0) + 1
            t.no = f"12345-{d}-{seq[d]:06d}"

    # -- intake's decisions --
    def decide(self, t):
        m = self.city.matcher
        cat = m.classify(t.hotline, t.content)
        comp = m.match(t.code_given, t.address, self.known)
        if cat != t.cat:
            raise SystemExit(f"gen_city: {t.content!r} classifies as {cat}, not {t.cat}")
        want = "" if t.triage_comp else t.compound
        if comp != want:
            raise SystemExit(f"gen_city: {t.address!r} matches {comp!r}, not {want!r}")
        if not comp or cat == "OTHER":
            t.disposition = "TRIAGE"
        elif t.rtype in ("CONSULT", "SUGGEST"):
            t.disposition = "RECORDED"
        else:
            t.disposition = "DISPATCHED"
        t.state = {"TRIAGE": "TRIAGE", "RECORDED": "RECORDED", "DISPATCHED": "OPEN"}[t.disposition]

    # -- lines --
    def emit(self, at, obj):
        self.lines.append((at, len(self.lines), obj))

    def ticket_line(self, t):
        self.emit(t.at, {"type": "ticket", "at": iso(t.at), "ticket_no": t.no,
                         "request_type": t.rtype, "hotline_category": t.hotline,
                         "caller_phone": t.phone or "", "caller_name": t.name or "",
                         "compound_code": t.code_given, "address": t.address,
                         "content": t.content})

    # -- referral, modelled (R-R2, R-R3, R-R4, R-R6) --
    def behaviour(self, unit, forced):
        if forced:
            return "normal"
        bad = self.unit_badness.get(unit, 1.0)
        r = self.rnd.random()
        for kind, p in (("late_accept", 0.05 * bad), ("late_resolve", 0.05 * bad),
                        ("return", 0.03), ("silent", 0.012 * bad), ("slow", 0.015 * bad),
                        ("no_resolve", 0.012 * bad)):
            if r < p:
                return kind
            r -= p
        return "normal"

    def simulate(self, t):
        """The unit, operator and callback lines of a dispatched ticket, with the
        step numbers referral will give (R-E3a)."""
        rnd, city, cal = self.rnd, self.city, self.city.calendar
        chain = city.routes[t.cat]
        limit = self.end - 60  # nothing after the quarter

        def issue(unit, pos, ah, rw, at, why):
            s = {"step": len(t.steps) + 1, "unit": unit, "pos": pos, "ah": ah, "rw": rw,
                 "issued": at, "accept_by": at + ah * HOUR, "resolve_by": cal.workdays_end(at, rw),
                 "reason": why, "state": "ISSUED"}
            t.steps.append(s)
            t.state = "OPEN"
            return s

        def upd(s, at, action, **kw):
            o = {"type": "update", "at": iso(at), "ticket_no": t.no, "step": s["step"],
                 "unit": s["unit"], "action": action}
            o.update(kw)
            self.emit(at, o)

        start = t.triage_at or t.at
        unit, ah, rw = city.route(t.cat, 1, t.compound)
        s = issue(unit, 1, ah, rw, start, "ROUTE")
        returns, redone, violation_done = 0, False, False
        while True:
            kind = self.behaviour(s["unit"], t.force)
            if kind == "return" and returns >= 2:
                kind = "normal"
            issued, ab, rb = s["issued"], s["accept_by"], s["resolve_by"]
            if kind == "silent":
                return
            # accept
            if kind == "late_accept":
                ta = self.daytime(ab + rnd.randint(600, 36 * HOUR), ab + 600, ab + 40 * HOUR)
            elif kind == "slow":
                ta = self.daytime(issued + rnd.randint(5 * DAY, 15 * DAY), issued + 5 * DAY, issued + 16 * DAY)
            else:
                ta = self.daytime(issued + max(120, int(rnd.uniform(0.03, 0.75) * (ab - issued))),
                                  issued + 120, ab - 60)
            if kind == "return" and rnd.random() < 0.5:  # returned before accepting
                ta = None
            else:
                if ta >= limit:
                    return
                upd(s, ta, "ACCEPT")
                s["state"] = "ACCEPTED"
            if kind == "no_resolve":
                return
            if kind == "return":
                tr = (issued + max(300, int(rnd.uniform(0.1, 0.9) * (ab - issued)))) if ta is None \
                    else ta + rnd.randint(HOUR, 2 * DAY)
                if tr >= limit:
                    return
                upd(s, tr, "RETURN", reason=rnd.choice(RETURN_REASONS))
                s["state"] = "RETURNED"
                t.state = "OPEN"  # waits for re-dispatch
                returns += 1
                tt = self.daytime(tr + rnd.randint(1800, 10 * HOUR), tr + 1800, tr + 2 * DAY)
                if tt >= limit:
                    return
                new_unit = self.other_unit(t, s["unit"])
                self.emit(tt, {"type": "triage", "at": iso(tt), "ticket_no": t.no,
                               "compound_code": "", "category": "", "unit": new_unit,
                               "step": s["step"]})
                s = issue(new_unit, s["pos"], s["ah"], s["rw"], tt, "REDISPATCH")
                continue
            # resolve
            if kind == "late_resolve" or rb - ta < HOUR:
                tv = self.daytime(max(rb, ta) + rnd.randint(HOUR, 5 * DAY), max(rb, ta) + 600, max(rb, ta) + 6 * DAY)
            elif kind == "slow":
                tv = self.daytime(ta + rnd.randint(HOUR, 3 * DAY), ta + HOUR, ta + 4 * DAY)
            else:
                tv = self.daytime(ta + max(600, int(rnd.betavariate(1.3, 3.0) * (rb - 600 - ta))),
                                  ta + 600, rb - 60)
            if tv >= limit:
                return
            kw, violation = {}, False
            if t.plan and not violation_done and s["pos"] == 1:
                violation, violation_done = True, True
                kw = {"violation_confirmed": True, "prohibition": t.plan,
                      "note": VIOLATION_NOTES[t.plan]}
            elif len(chain) > 1 and s["pos"] < len(chain):
                violation = t.force or rnd.random() < 0.5
                kw = {"violation_confirmed": violation,
                      "note": "经核查情况属实，移交下一环节" if violation else "经核查未发现违法行为"}
            elif t.cat.startswith("V_") and rnd.random() < 0.4:
                violation = True
                kw = {"violation_confirmed": True, "note": "情况属实，已责令改正"}
            else:
                kw = {"violation_confirmed": False, "note": rnd.choice(RESOLVE_NOTES)}
            upd(s, tv, "RESOLVE", **kw)
            s["state"] = "RESOLVED"
            if violation and s["pos"] < len(chain):  # R-R2: the chain goes on
                unit, ah, rw = city.route(t.cat, s["pos"] + 1, t.compound)
                s = issue(unit, s["pos"] + 1, ah, rw, tv, "ROUTE")
                continue
            t.state = "RESOLVED"
            if t.first_resolve is None:
                t.first_resolve = tv
            close_by = cal.workdays_end(tv, 3)
            if close_by < self.end:  # closed by the last watermark at the latest (R-R2)
                t.state = "CLOSED"
            r = rnd.random()
            if r < 0.22:  # no callback: closed after 3 working days (R-R2)
                return
            if r < 0.27:  # a callback after the ticket closed: no state change
                tf = close_by + rnd.randint(2 * HOUR, 3 * DAY)
                if tf < limit:
                    self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                                   "satisfaction": rnd.choice(SATISFACTION_OK + ["UNSATISFIED"])})
                return
            tf = self.daytime(tv + rnd.randint(2 * HOUR, max(3 * HOUR, min(2 * DAY, close_by - tv - 2 * HOUR))),
                              tv + HOUR, close_by - HOUR)
            if tf >= limit:
                return
            if not redone and rnd.random() < 0.13:  # R-R6: redo
                self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                               "satisfaction": "UNSATISFIED"})
                s["state"] = "REOPENED"
                redone = True
                s = issue(s["unit"], s["pos"], s["ah"], 3, tf, "REDO")
                t.force = False
                continue
            self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                           "satisfaction": rnd.choice(SATISFACTION_OK)})
            t.state = "CLOSED"
            return

    def daytime(self, x, lo, hi):
        """x moved into 08:00-20:00 local (units and call-backs work by day)
        when that keeps it within [lo, hi]; else x."""
        h = dt.datetime.fromtimestamp(x, TZ).hour
        if 8 <= h < 20:
            return x
        d = local_date(x)
        r = self.rnd.randrange(3600)
        if h >= 20:
            cands = [epoch(d) + 19 * HOUR + r, epoch(d + dt.timedelta(days=1)) + 8 * HOUR + r]
        else:
            cands = [epoch(d) + 8 * HOUR + r, epoch(d - dt.timedelta(days=1)) + 19 * HOUR + r]
        for c in cands:
            if lo <= c <= hi:
                return c
        return x

    def other_unit(self, t, unit):
        """Where an operator re-dispatches a returned step (R-R3)."""
        street = self.known[t.compound]["street"]
        if unit in self.city.street:
            return "ZJ" if t.cat.startswith("PS_") else "CGZF"
        if t.cat.startswith("PS_"):
            return street
        alts = [d for d in ("CGZF", "ZJ", "GA", "STHJ", "YJGL", "SCJG") if d != unit]
        return self.rnd.choice(alts + [street])

    def operator(self):
        """Triage completions and exemptions."""
        rnd = self.rnd
        for t in self.tickets:
            if t.disposition != "TRIAGE":
                continue
            if rnd.random() < 0.08:
                continue  # left waiting in the queue
            at = t.at + rnd.randint(1800, 30 * HOUR)
            if at >= self.end - 3 * DAY:
                continue
            t.triage_at = at
            self.emit(at, {"type": "triage", "at": iso(at), "ticket_no": t.no,
                           "compound_code": t.triage_comp or "", "category": t.triage_cat or "",
                           "unit": ""})
            if t.triage_cat:
                t.cat = t.triage_cat
            t.disposition = "RECORDED" if t.rtype in ("CONSULT", "SUGGEST") else "DISPATCHED"
            t.state = "OPEN" if t.disposition == "DISPATCHED" else "RECORDED"

    def exemptions(self):
        rnd = self.rnd
        cands = [t for t in self.tickets if t.disposition == "DISPATCHED" and t.rtype == "COMPLAINT"
                 and city_counts(self.city, t.cat) and t.plan is None
                 and self.known[t.compound]["management"] == "PROFESSIONAL"]
        hot = [t for t in cands if t.compound in self.hot_projects]
        pick = rnd.sample(hot, min(len(hot), max(2, self.n // 600))) + \
            rnd.sample(cands, min(len(cands), max(3, self.n // 150)))
        done = set()
        for t in pick:
            if t.no in done:
                continue
            d = local_date(t.at)
            month_end = epoch(dt.date(d.year + (d.month == 12), 1 if d.month == 12 else d.month + 1, 1))
            at = t.at + rnd.randint(2 * HOUR, 4 * DAY)
            if at >= month_end - HOUR:
                continue
            done.add(t.no)
            self.emit(at, {"type": "exempt", "at": iso(at), "ticket_no": t.no,
                           "reason": rnd.choice(EXEMPT_REASONS)})
        self.exempted = done

    def inspections(self):
        """Quarterly inspections of PROFESSIONAL projects (R-S1): every project
        once for a large feed, a sample for a small one; the hot and violating
        projects always, some twice."""
        rnd = self.rnd
        special = set(self.hot_projects) | {c for c, _ in self.violation_plans}
        others = [c["code"] for c in self.prof if c["code"] not in special]
        k = min(len(others), max(40, self.n // 3))
        chosen = sorted(special) + sorted(rnd.sample(others, k))
        quality = {co["code"]: rnd.uniform(72, 96) for co in self.city.companies}
        for co in self.bad_companies:
            quality[co] = rnd.uniform(45, 62)
        work = [k2 for k2 in range(5, self.days - 3)
                if self.city.calendar.working(self.d0 + dt.timedelta(days=k2))]
        for code in chosen:
            c = self.known[code]
            times = 2 if code in special and rnd.random() < 0.5 else 1
            for day in sorted(rnd.sample(work, times)):
                at = epoch(self.d0 + dt.timedelta(days=day)) + rnd.randint(9 * HOUR, 17 * HOUR)
                base = quality[c["company"]]
                dims = {}
                for dim in ("sanitation", "garbage", "greening", "order", "facilities", "disclosure",
                            "governance"):
                    dims[dim] = max(0, min(100, int(round(rnd.gauss(base, 8)))))
                self.insp_seq += 1
                o = {"type": "inspection", "at": iso(at), "compound_code": code}
                o.update(dims)
                o["inspection_id"] = f"{self.q}-{self.insp_seq:05d}"
                self.emit(at, o)

    def watermarks(self):
        t = self.start
        while t <= self.end:
            self.emit(t, {"type": "watermark", "at": iso(t)})
            t += 12 * HOUR
        self.emit(self.end + 1, {"type": "watermark", "at": iso(self.end + 1)})

    def run(self):
        self.hot()
        self.violations()
        rest = self.n - len(self.tickets) - max(3, self.n // 40)
        self.background(max(0, rest))
        for t in self.tickets:
            self.decide(t)
        self.number()
        self.operator()
        for t in sorted(self.tickets, key=lambda x: (x.triage_at or x.at, x.seq)):
            if t.disposition == "DISPATCHED":
                self.simulate(t)
        made = self.repeats()
        for t in made:
            self.decide(t)
            t.disposition, t.state = "REPEAT", "REPEAT"
        self.number_again(made)
        for t in self.tickets:
            self.ticket_line(t)
        self.exemptions()
        self.inspections()
        self.watermarks()
        # Watermarks after everything at their time; otherwise generation order
        # (which keeps each ticket's lines in causal order).
        self.lines.sort(key=lambda x: (x[0], x[2]["type"] == "watermark", x[1]))

    def number_again(self, made):
        """Repeats arrive between other calls: ticket numbers are per day in
        time order, so the whole quarter is numbered again; lines already
        written name tickets by number and are rewritten."""
        old = {id(t): t.no for t in self.tickets}
        self.number()
        remap = {old[id(t)]: t.no for t in self.tickets if old[id(t)] and old[id(t)] != t.no}
        if remap:
            for _, _, o in self.lines:
                if o.get("ticket_no") in remap:
                    o["ticket_no"] = remap[o["ticket_no"]]


def city_counts(city, cat):
    return city.cat[cat]["counts"] == "1"


def expectations(qr):
    """Per ticket: what intake decides and the steps referral issues."""
    out = []
    for t in sorted(qr.tickets, key=lambda x: x.no):
        out.append({"ticket_no": t.no, "category": t.cat, "compound": t.compound if
                    t.disposition != "TRIAGE" else "", "disposition": t.disposition,
                    "repeat_of": t.repeat_of.no if t.repeat_of else None, "state": t.state,
                    "exempt": t.no in qr.exempted, "violation": t.plan,
                    "steps": [{"step": s["step"], "unit": s["unit"], "state": s["state"],
                               "reason": s["reason"], "issued_at": iso(s["issued"]),
                               "accept_by": iso(s["accept_by"]), "resolve_by": iso(s["resolve_by"])}
                              for s in t.steps]})
    return out


def main():
    ap = argparse.ArgumentParser(
        description="Generate a sample city registry and a quarter's scenario feed "
                    "(SCENARIO formats), deterministically from a seed.")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--out", required=True, help="output directory (registry/ and feed.jsonl)")
    ap.add_argument("--tickets", type=int, default=6000, help="about this many tickets (default 6000)")
    ap.add_argument("--quarter", default="2026Q4", help="quarter of activity, e.g. 2026Q4 (default)")
    ap.add_argument("--compounds", type=int, default=3000, help="compounds in the city (default 3000)")
    ap.add_argument("--base", default=BASE, help="registry whose departments, categories, keywords, "
                    "routing and calendar are reused (default deploy/registry)")
    ap.add_argument("--expect", action="store_true",
                    help="also write expect.jsonl: intake's decision and referral's steps per ticket")
    a = ap.parse_args()
    if len(a.quarter) != 6 or a.quarter[4] != "Q" or a.quarter[5] not in "1234" or not a.quarter[:4].isdigit():
        ap.error("--quarter: YYYYQn")
    if a.tickets < 100 or a.compounds < 200:
        ap.error("--tickets at least 100, --compounds at least 200")
    t0 = time.time()
    rnd = random.Random(a.seed)
    city = City(rnd, a.compounds, a.base)
    qr = Quarter(city, rnd, a.quarter, a.tickets)
    qr.run()
    city.write(os.path.join(a.out, "registry"))
    with open(os.path.join(a.out, "feed.jsonl"), "w", encoding="utf-8") as f:
        for _, _, o in qr.lines:
            f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
    if a.expect:
        with open(os.path.join(a.out, "expect.jsonl"), "w", encoding="utf-8") as f:
            for o in expectations(qr):
                f.write(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n")
    kinds, disp = {}, {}
    for _, _, o in qr.lines:
        kinds[o["type"]] = kinds.get(o["type"], 0) + 1
    for t in qr.tickets:
        disp[t.disposition] = disp.get(t.disposition, 0) + 1
    mgmt = {}
    for c in city.compounds:
        mgmt[c["management"]] = mgmt.get(c["management"], 0) + 1
    print(f"gen_city: {len(city.streets)} streets, {len(city.compounds)} compounds ("
          + ", ".join(f"{v} {k}" for k, v in sorted(mgmt.items())) + f"), {len(city.companies)} companies; "
          f"{len(qr.lines)} lines: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
          + "; tickets: " + ", ".join(f"{v} {k}" for k, v in sorted(disp.items()))
          + f" ({time.time() - t0:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
