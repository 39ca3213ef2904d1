from django import forms

from billing.plans import paid_plan_list


class PlanChoiceForm(forms.Form):
    plan = forms.ChoiceField(choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = [(plan.code, plan.name) for plan in paid_plan_list()]
