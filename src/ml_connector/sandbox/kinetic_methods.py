"""The declared parameters of every method the Kinetic sandbox serves, per service.

Transcribed from the published method schemas in ``Snolandia/EpicorRestAPI_MethodsSchemas``
(generated from a Kinetic instance's REST help swagger): each ``<Method>_input`` class there lists
its parameters under "Required". The file each service comes from is named above its entry.
Kinetic answers a call missing one of them with 400 "Parameter X is not found in the input
object"; with ``SandboxOptions.strict_parameters`` the sandbox does the same.

Where the schema lists a ``whereClause<Table>`` for each of a tableset's many child tables
(``GetRows``), the entries below transcribe them in full for PaymentEntrySvc and CashRecSvc (read
in the schema); for the other services only the primary table's clause is listed (the child
lists were not transcribed), so the sandbox is lenient there: see docs/kinetic-sandbox.md.
"""

from __future__ import annotations

# A tuple of parameter names, in the schema's order.
Params = tuple[str, ...]

_LIST: Params = ("whereClause", "pageSize", "absolutePage")
_UPDATE: Params = ("ds",)
_UPDATE_EXT: Params = ("ds", "continueProcessingOnError", "rollbackParentOnChildError")

METHODS: dict[str, dict[str, Params]] = {
    # PythonEpicorRestAPI/Erp_BO_VendorSvc.py
    "Erp.BO.VendorSvc": {
        "GetNewVendor": ("ds",),
        "GetByID": ("vendorNum",),
        "GetByVendID": ("vendorID",),
        "GetList": _LIST,
        "GetRows": ("whereClauseVendor", "pageSize", "absolutePage"),
        "Update": _UPDATE,
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("vendorNum",),
    },
    # PythonEpicorRestAPI/Erp_BO_APInvGrpSvc.py
    "Erp.BO.APInvGrpSvc": {
        "GetNewAPInvGrp": ("ds",),
        "GetNewAPInvGrpNoLock": ("ds",),
        "GetByID": ("groupID",),
        "GetList": _LIST,
        "GetRows": ("whereClauseAPInvGrp", "pageSize", "absolutePage"),
        "Update": _UPDATE,
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("groupID",),
    },
    # PythonEpicorRestAPI/Erp_BO_APInvoiceSvc.py (UpdateMaster_input, UpdateExt_input, Update_input
    # read there; the header and line methods as listed in reference/epicor-kinetic-api.md section 3)
    "Erp.BO.APInvoiceSvc": {
        "GetNewAPInvHedInvoice": ("ds", "cGroupID"),
        "GetNewAPInvHed": ("ds", "vendorNum"),
        "GetNewAPInvDtl": ("ds", "vendorNum", "invoiceNum"),
        "GetNewAPInvDtlMiscellaneous": ("ds", "iVendorNum", "cInvoiceNum"),
        "ChangeVendorID": ("ProposedVendorID", "confirmCheck", "ds"),
        "ChangeInvoiceDateEx": ("ProposedInvoiceDate", "recalcAmts", "ds"),
        "ChangeInvoiceVendorAmt": ("ProposedInvoiceVendorAmt", "ds"),
        "GetByID": ("vendorNum", "invoiceNum"),
        "GetList": _LIST,
        "GetRows": ("whereClauseAPInvHed", "pageSize", "absolutePage"),
        "Update": _UPDATE,
        "UpdateMaster": (
            "ds",
            "cGroupID",
            "cTableName",
            "runChkCPay",
            "runChkBankRef",
            "runChkRevChrg",
            "suppressUserPrompts",
        ),
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("vendorNum", "invoiceNum"),
    },
    # PythonEpicorRestAPI/Erp_BO_APChkGrpSvc.py
    "Erp.BO.APChkGrpSvc": {
        "GetNewAPChkGrp": ("ds",),
        "GetByID": ("groupID",),
        "GetList": _LIST,
        "GetRows": ("whereClauseAPChkGrp", "pageSize", "absolutePage"),
        "Update": _UPDATE,
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("groupID",),
    },
    # PythonEpicorRestAPI/Erp_BO_PaymentEntrySvc.py
    "Erp.BO.PaymentEntrySvc": {
        "GetNewCheckHed": ("ds",),
        "CreateNewCheckHed": ("pcGroupID", "ds"),
        "GetNewAPTran": ("ds", "headNum", "apTranNo", "invoiceNum"),
        "OnChangeVendor": ("pcVendorID", "ds"),
        "OnChangeInvoiceNum": ("pcInvoiceNum", "pcChangeExchangeRateResponse", "ds"),
        "OnChangeDocTranAmt": ("pdDocTranAmt", "ds"),
        "OnChangeManualPrint": ("plManualPrint", "ds"),
        "GetByID": ("headNum",),
        "GetList": _LIST,
        "GetRows": (
            "whereClauseCheckHed",
            "whereClauseCheckHedAttch",
            "whereClauseAPTran",
            "whereClauseAPTranTGLC",
            "whereClauseAPTTaxDtl",
            "whereClauseBankTran",
            "whereClauseBankTranTaxDtl",
            "whereClauseBankTranTGLC",
            "whereClauseTaxDtl",
            "whereClauseLegalNumGenOpts",
            "pageSize",
            "absolutePage",
        ),
        "Update": _UPDATE,
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("headNum",),
    },
    # PythonEpicorRestAPI/Erp_BO_CashGrpSvc.py
    "Erp.BO.CashGrpSvc": {
        "GetNewCashGrp": ("ds",),
        "GetByID": ("groupID",),
        "GetList": _LIST,
        "GetRows": ("whereClauseCashGrp", "pageSize", "absolutePage"),
        "Update": _UPDATE,
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("groupID",),
    },
    # PythonEpicorRestAPI/Erp_BO_CashRecSvc.py
    "Erp.BO.CashRecSvc": {
        "GetNewCashHead": ("ds", "groupID"),
        "GetNewCashHeadType": ("ds", "groupID", "tranType"),
        "GetNewCashDtl": ("ds", "groupID", "headNum", "invoiceNum"),
        "GetCustomerInfo": ("custID", "ds"),
        "GetDtlInvoiceInfo": ("invoiceNum", "ds"),
        "GetDtlTranAmtInfo": ("docTranAmt", "docWriteOffAmount", "ds"),
        "GetByID": ("groupID", "headNum"),
        "GetList": _LIST,
        "GetRows": (
            "whereClauseCashHead",
            "whereClauseCashHeadAttch",
            "whereClauseBankTran",
            "whereClauseBankTranTaxDtl",
            "whereClauseBankTranTGLC",
            "whereClauseDebNote",
            "whereClauseDebNoteAttch",
            "whereClauseCashDtl",
            "whereClauseCashDtlTGLC",
            "whereClauseCDTaxDtl",
            "whereClauseCashHeadTGLC",
            "whereClauseTaxDtl",
            "whereClauseLegalNumGenOpts",
            "pageSize",
            "absolutePage",
        ),
        "Update": _UPDATE,
        "UpdateMaster": ("ds", "ipGroupID", "ipTableName", "updGroupTotals", "ipIgnoreValidation"),
        "UpdateExt": _UPDATE_EXT,
        "DeleteByID": ("groupID", "headNum"),
    },
    # PythonEpicorRestAPI/Erp_BO_ARInvoiceSvc.py (read-only in the sandbox)
    "Erp.BO.ARInvoiceSvc": {
        "GetByID": ("invoiceNum",),
        "GetList": _LIST,
        "GetRows": ("whereClauseInvcHead", "pageSize", "absolutePage"),
    },
}

# Reads that Kinetic takes by GET with query parameters; by POST they are deprecated.
READ_METHODS = frozenset({"GetByID", "GetList", "GetRows"})


def declared(service: str, method: str) -> Params | None:
    """The parameters ``method`` of ``service`` declares, or None when the table has no entry."""
    return METHODS.get(service, {}).get(method)


def missing(service: str, method: str, params: dict[str, object]) -> list[str]:
    """The declared parameters of ``method`` that ``params`` lacks, in the schema's order."""
    return [name for name in declared(service, method) or () if name not in params]
